// Test fixture for the end-to-end harness: the real extension's shape in miniature. Completions come from a forked
// child whose file is named engine-host.js (the harness finds it by that name and kills it); the provider restarts it
// when it exits. The suggestion names the host's pid, so a test can see a completion came from the new host.
const vscode = require("vscode");
const { fork } = require("child_process");
const path = require("path");

let host;
let nextId = 1;
const pending = new Map();

function startHost() {
  const child = fork(path.join(__dirname, "engine-host.js"), [], { stdio: "ignore", serialization: "json" });
  child.on("message", (message) => {
    const resolve = pending.get(message.id);
    pending.delete(message.id);
    if (resolve) resolve(message.text);
  });
  child.on("exit", () => {
    for (const resolve of pending.values()) resolve(undefined);
    pending.clear();
    if (host === child) host = undefined;
  });
  host = child;
  return child;
}

function complete(prefix) {
  const child = host ?? startHost();
  const id = nextId++;
  return new Promise((resolve) => {
    pending.set(id, resolve);
    child.send({ id, prefix });
  });
}

function activate(context) {
  startHost();
  const provider = {
    async provideInlineCompletionItems(document, position) {
      if (document.lineAt(position.line).text.trim() === "") return [];
      const text = await complete(document.getText(new vscode.Range(new vscode.Position(0, 0), position)));
      return text ? [new vscode.InlineCompletionItem(text, new vscode.Range(position, position))] : [];
    },
  };
  context.subscriptions.push(vscode.languages.registerInlineCompletionItemProvider({ pattern: "**" }, provider));
  context.subscriptions.push({ dispose: () => host && host.kill() });
}

module.exports = { activate, deactivate() {} };
