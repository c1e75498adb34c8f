// Compile contracts/*.sol (with the shipped precompile interfaces ai_precompiles/sol/*.sol)
// with solc-js standard JSON (evmVersion cancun) into build/<Name>.json.
// Usage: node compile.js [--check]   (--check: exit 1 if the committed output is stale)
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require(path.resolve(__dirname, "../../../node_modules/solc"));

const here = __dirname;
const ifaces = path.resolve(here, "../../../ai_precompiles/sol");
const sources = {};
for (const [dir, prefix] of [[path.join(here, "contracts"), "contracts/"], [ifaces, "ai_precompiles/sol/"]]) {
  for (const f of fs.readdirSync(dir).sort()) {
    if (f.endsWith(".sol")) sources[prefix + f] = { content: fs.readFileSync(path.join(dir, f), "utf8") };
  }
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    evmVersion: "cancun",
    optimizer: { enabled: true, runs: 200 },
    viaIR: true, // submitReceipt takes nine arguments: more than the legacy code generator can stack
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
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
  if (!file.startsWith("contracts/")) continue; // interfaces have no bytecode worth keeping
  for (const [name, c] of Object.entries(contracts)) {
    const artifact = {
      contractName: name,
      sourceName: file,
      compiler: { name: "solc-js", version: solc.version() },
      settings: input.settings,
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
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
