/**
 * The RoPE cos/sin table on the GPU, shared by every kernel of a session. Angles are computed in
 * float64 by core (exact for large positions, where float32 `sin(position * frequency)` would lose
 * several digits) and rounded once to float32 here.
 */
import { createRopeTable, type RopeOptions, type RopeTable } from "@self-extend/core";
import { uploadFloat32 } from "./gpu-buffers.js";

export interface GpuRopeTable {
  readonly table: RopeTable;
  /** [position, pair, 2] float32: cos then sin. */
  readonly buffer: GPUBuffer;
}

export function createGpuRopeTable(
  device: GPUDevice,
  options: RopeOptions,
  positionCount: number,
): GpuRopeTable {
  const table = createRopeTable(options, positionCount);
  const interleaved = new Float32Array(table.cos.length * 2);
  for (let index = 0; index < table.cos.length; index++) {
    interleaved[2 * index] = table.cos[index];
    interleaved[2 * index + 1] = table.sin[index];
  }
  return { table, buffer: uploadFloat32(device, interleaved, "rope table") };
}
