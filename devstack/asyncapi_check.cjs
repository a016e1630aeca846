// Validates an AsyncAPI document with the AsyncAPI initiative's own parser (@asyncapi/parser,
// installed in web/node_modules by `npm ci --prefix web`). Prints every diagnostic as JSON
// lines on stdout; exits 1 when any is an error.
// Usage: node devstack/asyncapi_check.cjs asyncapi.json
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { createRequire } = require("node:module");

const webRequire = createRequire(path.join(__dirname, "..", "web", "package.json"));
const { Parser, DiagnosticSeverity } = webRequire("@asyncapi/parser");

async function main() {
  const file = process.argv[2];
  const text = fs.readFileSync(file, "utf8");
  const { document, diagnostics } = await new Parser().parse(text, { source: path.resolve(file) });
  let errors = 0;
  for (const diagnostic of diagnostics) {
    if (diagnostic.severity === DiagnosticSeverity.Error) errors += 1;
    console.log(JSON.stringify({
      severity: diagnostic.severity,
      code: diagnostic.code,
      message: diagnostic.message,
      path: diagnostic.path.join("/"),
    }));
  }
  if (document) {
    const summary = {
      version: document.version(),
      operations: document.operations().all().map((op) => op.id()),
      messages: document.allMessages().all().map((message) => message.id()),
    };
    console.log(JSON.stringify({ summary }));
  }
  process.exit(errors || !document ? 1 : 0);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
