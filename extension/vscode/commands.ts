// The commands in package.json's contributes.commands.
import * as vscode from "vscode";

import type { EngineClient } from "../host/engine-client";
import { pickModel } from "./model-picker";
import { readSettings, updateSetting } from "./settings";

export const COMMANDS = {
  toggle: "pyramidCoder.toggle",
  selectModel: "pyramidCoder.selectModel",
  showLog: "pyramidCoder.showLog",
} as const;

export function registerCommands(client: EngineClient, output: vscode.OutputChannel): vscode.Disposable[] {
  return [
    // Off also unloads the model, so the memory it held (weights and KV cache) goes back at once.
    vscode.commands.registerCommand(COMMANDS.toggle, async () => {
      const enabled = !readSettings().completion.enabled;
      await updateSetting("completion.enabled", enabled);
      if (!enabled) await client.unload().catch((error) => output.appendLine(`unload failed: ${(error as Error).message}`));
      vscode.window.setStatusBarMessage(`Pyramid Coder: completions ${enabled ? "on" : "off"}`, 3000);
    }),
    vscode.commands.registerCommand(COMMANDS.selectModel, () => pickModel(client)),
    vscode.commands.registerCommand(COMMANDS.showLog, () => output.show(true)),
  ];
}
