/**
 * The README's two commands are the contract with a new contributor and with CI: `.ci/run` must run
 * them word for word (so a green CI means they work on a fresh machine), and they must set the
 * machine up themselves (the system packages the tests need).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..", "..");

/** The shell lines of the README's "Two commands" block, without their trailing comments. */
function readmeCommands(): string[] {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = readme.split("## Two commands")[1]?.split("\n## ")[0] ?? "";
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
  return block
    .split("\n")
    .map((line) => line.replace(/\s+#.*$/, "").trim())
    .filter((line) => line !== "");
}

describe("the README's two commands", () => {
  it("are two: install and test", () => {
    const commands = readmeCommands();
    expect(commands).toHaveLength(2);
    expect(commands[0]).toContain("pnpm install");
    expect(commands[1]).toBe("pnpm test");
  });

  it(".ci/run runs each of them as written, on a line of its own", () => {
    const ciLines = readFileSync(join(root, ".ci", "run"), "utf8")
      .split("\n")
      .map((line) => line.trim());
    for (const command of readmeCommands()) expect(ciLines).toContain(command);
  });

  it("both set up the system packages before building or testing", () => {
    const scripts = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts as Record<
      string,
      string
    >;
    for (const name of ["test", "conformance"]) {
      expect(scripts[name].startsWith("sh scripts/ensure-test-dependencies.sh && ")).toBe(true);
    }
  });
});

describe("changesets", () => {
  it("the check passes on the repository's changesets", () => {
    expect(
      execFileSync("node", [join(root, "scripts", "check-changesets.mjs")], { encoding: "utf8" }),
    ).toContain("one package each");
  });

  it("the check names a changeset that spans two packages", () => {
    // The script reads the .changeset folder beside it: run a copy against a folder of our own.
    const folder = mkdtempSync(join(tmpdir(), "changeset-check-"));
    const scripts = join(folder, "scripts");
    const changesets = join(folder, ".changeset");
    execFileSync("mkdir", ["-p", scripts, changesets]);
    writeFileSync(join(scripts, "check.mjs"), readFileSync(join(root, "scripts", "check-changesets.mjs")));
    writeFileSync(
      join(changesets, "two.md"),
      '---\n"@self-extend/core": minor\n"@self-extend/webgpu": minor\n---\n\nText.\n',
    );
    let output = "";
    try {
      execFileSync("node", [join(scripts, "check.mjs")], { encoding: "utf8", stdio: "pipe" });
    } catch (error) {
      output = String((error as { stderr: string }).stderr);
    }
    expect(output).toContain(
      '.changeset/two.md: names 2 packages ("@self-extend/core", "@self-extend/webgpu")',
    );
  });
});
