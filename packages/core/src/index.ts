export * from "./backend-contract.js";
export * from "./config.js";
export * from "./errors.js";
export * from "./generation.js";
export * from "./planner.js";
export * from "./position-map.js";
export * from "./reference-attention.js";
export * from "./rope.js";
