// llama.cpp as the outside reference: node-llama-cpp's prebuilt CPU binaries, never built or downloaded here.
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel } from "node-llama-cpp";

let llama: Promise<Llama> | undefined;

export function referenceLlama(): Promise<Llama> {
  llama ??= getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: LlamaLogLevel.error, progressLogs: false });
  return llama;
}

/** Loads a GGUF in llama.cpp; `vocabOnly` skips the weights when only the tokenizer is compared. */
export async function referenceModel(modelPath: string, options: { vocabOnly?: boolean } = {}): Promise<LlamaModel> {
  return (await referenceLlama()).loadModel({ modelPath, vocabOnly: options.vocabOnly ?? false });
}
