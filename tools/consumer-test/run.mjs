#!/usr/bin/env node
/**
 * The consumer test: what a user gets from npm, checked from outside the repository.
 *
 * 1. `pnpm pack` every public package (workspace versions become real ones, `files` applies).
 * 2. A temporary project outside the repository installs the tarballs with npm, next to the
 *    runtimes the adapters take as peers (node-llama-cpp, onnxruntime-node, webgpu), vitest (peer
 *    of @self-extend/conformance/vitest), TypeScript and @types/node, at the versions this
 *    repository tests with. Third-party packages come from the npm registry; install scripts are
 *    off (onnxruntime-node's would fetch CUDA parts, node-llama-cpp's would download or build).
 * 3. Strict `tsc --noEmit` (module and moduleResolution nodenext, skipLibCheck false) over a file
 *    that imports every entry point of every public package (each `exports` subpath that is a
 *    module) and over every package's examples/*.ts: published declarations must type-check for a
 *    consumer as they are. node-llama-cpp 3.21.1's own declarations have two errors that every
 *    strict consumer of it gets, with or without us; they are listed below by file and code and
 *    reported, and any other error fails the test.
 * 4. The same files compiled to JavaScript and run with node: the entry-point file imports every
 *    entry at run time, and every example runs to completion; each examples/usage.ts (the usage
 *    example of its package's README) must print the pass key it hid. Examples named browser*.ts
 *    are only type-checked.
 *
 * Usage: `pnpm test:consumer` (builds first through turbo; `--keep` keeps the temporary folder).
 * Exits 0 only when every step passed; prints one line per step and the reason of a failure.
 */
import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const keep = process.argv.includes("--keep");
const skipBuild = process.argv.includes("--no-build");
const expectedAnswer = "answer: 71432.";

class StepError extends Error {}

/**
 * Errors in a peer runtime's own declarations, independent of this repository (a strict project
 * that imports only node-llama-cpp 3.21.1 gets them too): `getLlamaForOptions` destructures a
 * `tempDir` that `LlamaOptions` no longer has, and `readGgufFileInfo.d.ts` imports `async-retry`,
 * which ships no types. Matched by file and code, so anything else still fails.
 */
const knownThirdPartyErrors = [
  { file: "node_modules/node-llama-cpp/dist/bindings/getLlama.d.ts", code: "TS2339" },
  { file: "node_modules/node-llama-cpp/dist/gguf/readGgufFileInfo.d.ts", code: "TS7016" },
];

function readJson(path) {
  return JSON.parse(readFileSync(path, "utf8"));
}

/** Runs a command; on failure throws with its last output lines, never a stack trace. */
function run(command, args, options = {}) {
  const result = spawnSync(command, args, {
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
    ...options,
    env: { ...process.env, ...options.env },
  });
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
  if (result.error !== undefined || result.status !== 0) {
    const reason = result.error?.message ?? `exit code ${result.status ?? result.signal}`;
    const tail = output.trim().split("\n").slice(-40).join("\n");
    throw new StepError(`${command} ${args.join(" ")} failed (${reason})${tail ? `:\n${tail}` : ""}`);
  }
  return output;
}

function step(name, action) {
  const started = Date.now();
  const result = action();
  console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return result;
}

/** Public packages: every workspace package under packages/ and apps/ that is not private. */
function publicPackages() {
  const found = [];
  for (const group of ["packages", "apps"]) {
    for (const name of readdirSync(join(repositoryRoot, group)).sort()) {
      const folder = join(repositoryRoot, group, name);
      const manifestPath = join(folder, "package.json");
      if (!existsSync(manifestPath)) continue;
      const manifest = readJson(manifestPath);
      if (manifest.private) continue;
      found.push({ folder, manifest });
    }
  }
  return found;
}

/** Every `exports` subpath that is a JavaScript module (not package.json, data files or patterns). */
function moduleEntryPoints(manifest) {
  return Object.entries(manifest.exports ?? { ".": manifest.main })
    .filter(([subpath, target]) => !subpath.includes("*") && typeof target === "object" && target !== null)
    .map(([subpath]) => (subpath === "." ? manifest.name : `${manifest.name}${subpath.slice(1)}`));
}

/** The version the repository itself tests a third-party package with (a devDependency pin). */
function pinnedVersion(packages, dependency) {
  const rootManifest = readJson(join(repositoryRoot, "package.json"));
  for (const manifest of [rootManifest, ...packages.map((entry) => entry.manifest)]) {
    const version = manifest.devDependencies?.[dependency] ?? manifest.dependencies?.[dependency];
    if (version !== undefined && !version.startsWith("workspace:")) return version;
  }
  throw new StepError(`no package of the repository pins ${dependency}; the consumer test needs its version`);
}

function main() {
  const packages = publicPackages();
  const work = mkdtempSync(join(tmpdir(), "self-extend-consumer-"));
  const tarballs = join(work, "tarballs");
  const project = join(work, "project");
  mkdirSync(tarballs);
  mkdirSync(join(project, "examples"), { recursive: true });
  console.log(`consumer test in ${work}: ${packages.map((entry) => entry.manifest.name).join(", ")}`);
  let passed = false;
  try {
    if (!skipBuild) {
      step("build (turbo)", () =>
        run("pnpm", ["exec", "turbo", "run", "build", "--output-logs=errors-only"], {
          cwd: repositoryRoot,
          env: { TURBO_TELEMETRY_DISABLED: "1" },
        }),
      );
    }

    const dependencies = {};
    step(`pnpm pack (${packages.length} packages)`, () => {
      for (const { folder, manifest } of packages) {
        const before = new Set(readdirSync(tarballs));
        run("pnpm", ["pack", "--pack-destination", tarballs], { cwd: folder });
        const added = readdirSync(tarballs).filter((file) => !before.has(file));
        if (added.length !== 1)
          throw new StepError(`pnpm pack of ${manifest.name} wrote ${added.length} files`);
        dependencies[manifest.name] = `file:../tarballs/${added[0]}`;
      }
    });

    // Runtimes at the versions the repository tests with. npm would also install node-llama-cpp's
    // optional GPU builds (hundreds of MB); its CPU build for this platform is named instead.
    const nodeLlamaCpp = pinnedVersion(packages, "node-llama-cpp");
    const omitOptional = process.platform === "linux" && process.arch === "x64";
    Object.assign(dependencies, {
      "node-llama-cpp": nodeLlamaCpp,
      ...(omitOptional ? { "@node-llama-cpp/linux-x64": nodeLlamaCpp } : {}),
      "onnxruntime-node": pinnedVersion(packages, "onnxruntime-node"),
      webgpu: pinnedVersion(packages, "webgpu"),
      vitest: pinnedVersion(packages, "vitest"),
      typescript: pinnedVersion(packages, "typescript"),
      "@types/node": pinnedVersion(packages, "@types/node"),
    });
    writeFileSync(
      join(project, "package.json"),
      `${JSON.stringify({ name: "self-extend-consumer", private: true, type: "module", dependencies }, null, 2)}\n`,
    );

    step("npm install (tarballs + runtimes from the registry)", () =>
      run(
        "npm",
        [
          "install",
          "--no-audit",
          "--no-fund",
          "--no-package-lock",
          "--ignore-scripts",
          ...(omitOptional ? ["--omit=optional"] : []),
        ],
        { cwd: project, env: { NODE_LLAMA_CPP_SKIP_DOWNLOAD: "true", ONNXRUNTIME_NODE_INSTALL: "skip" } },
      ),
    );

    // Every module entry point, imported by name; at run time each must load.
    const entryPoints = packages.flatMap(({ manifest }) => moduleEntryPoints(manifest));
    const imports = entryPoints.map((entry, index) => `import * as entry${index} from "${entry}";`);
    writeFileSync(
      join(project, "entry-points.ts"),
      `${imports.join("\n")}\n\nconst entries: Record<string, object> = {\n${entryPoints
        .map((entry, index) => `  "${entry}": entry${index},`)
        .join(
          "\n",
        )}\n};\nfor (const [name, entry] of Object.entries(entries)) {\n  if (Object.keys(entry).length === 0) throw new Error(\`\${name} exports nothing\`);\n}\nconsole.log(\`\${Object.keys(entries).length} entry points loaded\`);\n`,
    );

    const examples = [];
    for (const { folder, manifest } of packages) {
      const examplesFolder = join(folder, "examples");
      if (!existsSync(examplesFolder)) continue;
      for (const file of readdirSync(examplesFolder).filter((name) => name.endsWith(".ts"))) {
        const copy = `${manifest.name.replace(/^@self-extend\//, "")}-${file}`;
        cpSync(join(examplesFolder, file), join(project, "examples", copy));
        examples.push({ name: `${manifest.name} examples/${file}`, copy, runs: !file.startsWith("browser") });
      }
    }

    // The default lib (ES2022 + DOM), as in most projects: @webgpu/types and onnxruntime-common's
    // declarations name DOM types, so a project with a DOM-less lib cannot use those runtimes.
    const compilerOptions = {
      strict: true,
      target: "ES2022",
      module: "nodenext",
      moduleResolution: "nodenext",
      skipLibCheck: false,
      outDir: "build",
    };
    writeFileSync(
      join(project, "tsconfig.json"),
      `${JSON.stringify({ compilerOptions, include: ["entry-points.ts", "examples/*.ts"] }, null, 2)}\n`,
    );
    const tsc = join(project, "node_modules", "typescript", "bin", "tsc");
    step(
      `tsc --noEmit, strict, nodenext, skipLibCheck false (${entryPoints.length} entry points, ${examples.length} examples)`,
      () => {
        const result = spawnSync(
          process.execPath,
          [tsc, "--noEmit", "--pretty", "false", "-p", "tsconfig.json"],
          {
            cwd: project,
            encoding: "utf8",
          },
        );
        const lines = `${result.stdout}${result.stderr}`.split("\n").filter((line) => line.trim() !== "");
        const errors = lines.filter((line) => /^\S.*\(\d+,\d+\): error TS\d+/.test(line));
        const known = errors.filter((line) =>
          knownThirdPartyErrors.some(
            ({ file, code }) => line.startsWith(`${file}(`) && line.includes(`error ${code}:`),
          ),
        );
        const unexpected = errors.filter((line) => !known.includes(line));
        for (const line of known) console.log(`     known, not ours: ${line}`);
        if (unexpected.length > 0 || (result.status !== 0 && errors.length === 0)) {
          throw new StepError(
            `tsc found errors:\n${(unexpected.length > 0 ? unexpected : lines).slice(0, 60).join("\n")}`,
          );
        }
      },
    );
    step("compile to JavaScript", () =>
      run(process.execPath, [tsc, "--noCheck", "-p", "tsconfig.json"], { cwd: project }),
    );

    step("import every entry point with node", () =>
      run(process.execPath, [join("build", "entry-points.js")], { cwd: project }),
    );
    for (const example of examples.filter((entry) => entry.runs)) {
      step(`run ${example.name}`, () => {
        const output = run(
          process.execPath,
          [join("build", "examples", example.copy.replace(/\.ts$/, ".js"))],
          {
            cwd: project,
            env: {
              SELF_EXTEND_ONNX_CACHE: join(work, "onnx-cache"),
              // The user's own ONNX export that examples/imported-export.ts opens (the repository's test export).
              MODEL_FOLDER: join(repositoryRoot, "packages/onnxruntime/test/fixtures/imported/optimum/llama"),
            },
            timeout: 300_000,
          },
        );
        if (example.copy.endsWith("-usage.ts") && !output.split("\n").includes(expectedAnswer)) {
          throw new StepError(
            `${example.name} did not print "${expectedAnswer}"; it printed:\n${output.trim()}`,
          );
        }
      });
    }
    // The CLI as an npm user gets it: the installed bin, outside any checkout of the repository.
    const cli = join(project, "node_modules", ".bin", "self-extend");
    step("self-extend plan and generate (the demo model from its package)", () => {
      const plan = run(cli, ["plan", "--trained-context", "512", "--target-context", "2048"], {
        cwd: project,
      });
      if (!plan.includes("largest usable context")) throw new StepError(`plan printed:\n${plan}`);
      const generated = run(
        cli,
        ["generate", "--prompt", "Once upon a time", "--max-tokens", "4", "--json"],
        {
          cwd: project,
        },
      );
      if (!/"tokens":\[\d+,\d+,\d+,\d+\]/.test(generated))
        throw new StepError(`generate printed:\n${generated}`);
    });
    step("self-extend errors name flags, never the repository's folders", () => {
      const result = spawnSync(cli, ["eval", "ppl", "--lengths", "64"], { cwd: project, encoding: "utf8" });
      const message = result.stderr.trim();
      if (
        result.status !== 2 ||
        message.split("\n").length !== 1 ||
        !message.includes("--text is required")
      ) {
        throw new StepError(`eval ppl without --text: exit ${result.status}, stderr:\n${message}`);
      }
      if (/shared|checkout/.test(message))
        throw new StepError(`the message names the repository: ${message}`);
    });
    passed = true;
  } catch (error) {
    if (!(error instanceof StepError)) throw error;
    console.error(`FAIL ${error.message}`);
    process.exitCode = 1;
  } finally {
    if (keep || !passed) console.log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
  if (passed) console.log("consumer test passed");
}

main();
