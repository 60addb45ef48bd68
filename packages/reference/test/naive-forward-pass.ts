/**
 * An independent, deliberately naive forward pass for the tests: plain number arrays, one
 * matrix-vector product per token, and for every (query i, key j) pair the relative position
 * r(i, j) taken straight from the spec's formula, with the query rotated by r and the key left
 * unrotated (RoPE only sees the difference). It shares no code with src/ or with core's attention.
 */
import type { LlamaWeights } from "@self-extend/models";

function relativePosition(i: number, j: number, groupSize: number, window: number): number {
  if (i - j < window) return i - j;
  return Math.floor(i / groupSize) - Math.floor(j / groupSize) + window - Math.floor(window / groupSize);
}

function matrixVector(
  matrix: Float32Array,
  rows: number,
  columns: number,
  vector: number[],
  bias?: Float32Array,
) {
  const result: number[] = [];
  for (let row = 0; row < rows; row++) {
    let sum = bias === undefined ? 0 : bias[row];
    for (let column = 0; column < columns; column++) sum += matrix[row * columns + column] * vector[column];
    result.push(sum);
  }
  return result;
}

function rmsNorm(vector: number[], gain: Float32Array, epsilon: number): number[] {
  const meanSquare = vector.reduce((total, value) => total + value * value, 0) / vector.length;
  return vector.map((value, index) => (value / Math.sqrt(meanSquare + epsilon)) * gain[index]);
}

function rotate(weights: LlamaWeights, head: number[], position: number): number[] {
  const { ropeLayout, rotaryDimension, ropeBase, ropeLinearScalingFactor } = weights.description;
  const rotated = [...head];
  for (let pair = 0; pair < rotaryDimension / 2; pair++) {
    const angle = (position / ropeLinearScalingFactor) * ropeBase ** (-(2 * pair) / rotaryDimension);
    const a = ropeLayout === "interleaved" ? 2 * pair : pair;
    const b = ropeLayout === "interleaved" ? 2 * pair + 1 : pair + rotaryDimension / 2;
    rotated[a] = head[a] * Math.cos(angle) - head[b] * Math.sin(angle);
    rotated[b] = head[a] * Math.sin(angle) + head[b] * Math.cos(angle);
  }
  return rotated;
}

/** Logits of every position, [token][vocabulary]. */
export function naiveForwardPass(
  weights: LlamaWeights,
  tokens: readonly number[],
  groupSize: number,
  window: number,
): number[][] {
  const d = weights.description;
  const { embeddingSize: size, headCount, kvHeadCount, headSize } = d;
  let hidden = tokens.map((token) =>
    Array.from(weights.tokenEmbedding.subarray(token * size, (token + 1) * size)),
  );
  for (const layer of weights.layers) {
    const normed = hidden.map((x) => rmsNorm(x, layer.attentionNorm, d.normEpsilon));
    const q = normed.map((x) => matrixVector(layer.query, headCount * headSize, size, x, layer.queryBias));
    const k = normed.map((x) => matrixVector(layer.key, kvHeadCount * headSize, size, x, layer.keyBias));
    const v = normed.map((x) => matrixVector(layer.value, kvHeadCount * headSize, size, x, layer.valueBias));
    hidden = hidden.map((x, i) => {
      const attention: number[] = [];
      for (let head = 0; head < headCount; head++) {
        const kvHead = Math.floor(head / (headCount / kvHeadCount));
        const query = q[i].slice(head * headSize, (head + 1) * headSize);
        const scores: number[] = [];
        for (let j = 0; j <= i; j++) {
          const rotatedQuery = rotate(weights, query, relativePosition(i, j, groupSize, window));
          const key = k[j].slice(kvHead * headSize, (kvHead + 1) * headSize);
          scores.push(
            rotatedQuery.reduce((total, value, index) => total + value * key[index], 0) / Math.sqrt(headSize),
          );
        }
        const largest = Math.max(...scores);
        const weightsOfKeys = scores.map((score) => Math.exp(score - largest));
        const total = weightsOfKeys.reduce((sum, value) => sum + value, 0);
        for (let dimension = 0; dimension < headSize; dimension++) {
          let sum = 0;
          for (let j = 0; j <= i; j++)
            sum += (weightsOfKeys[j] / total) * v[j][kvHead * headSize + dimension];
          attention.push(sum);
        }
      }
      const projected = matrixVector(layer.output, size, headCount * headSize, attention);
      const afterAttention = x.map((value, index) => value + projected[index]);
      const normedAgain = rmsNorm(afterAttention, layer.feedForwardNorm, d.normEpsilon);
      const gate = matrixVector(layer.gate, d.feedForwardSize, size, normedAgain);
      const up = matrixVector(layer.up, d.feedForwardSize, size, normedAgain);
      const gated = gate.map((value, index) => (value / (1 + Math.exp(-value))) * up[index]);
      const down = matrixVector(layer.down, size, d.feedForwardSize, gated);
      return afterAttention.map((value, index) => value + down[index]);
    });
  }
  return hidden.map((x) =>
    matrixVector(weights.output, d.vocabularySize, size, rmsNorm(x, weights.outputNorm, d.normEpsilon)),
  );
}
