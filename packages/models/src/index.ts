export * from "./llama-model.js";
export * from "./model-file-error.js";
export * from "./llama2c-checkpoint.js";
