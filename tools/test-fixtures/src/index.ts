export { consoleLinesOf } from "./console-lines.js";
export { repositoryRoot, sharedModelPaths, sharedPath } from "./shared-path.js";
export { useTemporaryFolder } from "./temporary-folder.js";
export * from "./xml-tree.js";
