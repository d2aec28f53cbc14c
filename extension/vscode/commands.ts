// The commands in package.json's contributes.commands, registered with the handlers extension.ts gives them.
import * as vscode from "vscode";

export const COMMANDS = {
  toggle: "pyramidCoder.toggle",
  selectModel: "pyramidCoder.selectModel",
  selectExplainModel: "pyramidCoder.selectExplainModel",
  downloadModel: "pyramidCoder.downloadModel",
  explainSelection: "pyramidCoder.explainSelection",
  showStatus: "pyramidCoder.showStatus",
  showLog: "pyramidCoder.showLog",
} as const;

export type CommandName = keyof typeof COMMANDS;

export function registerCommands(handlers: Record<CommandName, () => unknown>): vscode.Disposable[] {
  return (Object.keys(COMMANDS) as CommandName[]).map((name) => vscode.commands.registerCommand(COMMANDS[name], handlers[name]));
}
