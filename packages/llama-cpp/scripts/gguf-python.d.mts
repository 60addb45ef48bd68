export declare const ggufPythonInterpreter: string;
export declare function ggufPythonPath(): string;
export declare function runGgufPython(
  script: string,
  args?: readonly string[],
  options?: import("node:child_process").ExecFileSyncOptions,
): string;
