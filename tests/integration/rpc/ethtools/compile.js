// Compile contracts/*.sol with solc-js (standard JSON) into build/<Name>.json.
// Usage: node compile.js [--check]   (--check: exit 1 if the committed output is stale)
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require(path.resolve(__dirname, "../../../../node_modules/solc"));

const here = __dirname;
const sources = {};
for (const f of fs.readdirSync(path.join(here, "contracts")).sort()) {
  if (f.endsWith(".sol")) {
    sources[f] = { content: fs.readFileSync(path.join(here, "contracts", f), "utf8") };
  }
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    evmVersion: "cancun",
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(2);
}
const check = process.argv.includes("--check");
let stale = false;
for (const [file, contracts] of Object.entries(out.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    const artifact = {
      contractName: name,
      sourceName: `contracts/${file}`,
      compiler: { name: "solc-js", version: solc.version() },
      settings: input.settings,
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    const text = JSON.stringify(artifact, null, 2) + "\n";
    const target = path.join(here, "build", `${name}.json`);
    if (check) {
      const old = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : "";
      if (old !== text) {
        console.error(`stale: ${target}`);
        stale = true;
      }
    } else {
      fs.writeFileSync(target, text);
      console.log(`wrote ${path.relative(process.cwd(), target)}`);
    }
  }
}
process.exit(stale ? 1 : 0);
