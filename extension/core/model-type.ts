// What a GGUF file says about the model it holds: its weight format (general.file_type, llama.cpp's llama_ftype, as
// llama-bench names it) and whether it was tuned for chat, which decides if Explain's Instruct template will work.
const FILE_TYPES: Record<number, string> = {
  0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M",
  13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16",
};

export function fileTypeName(fileType: unknown): string {
  return typeof fileType === "number" ? FILE_TYPES[fileType] ?? `file type ${fileType}` : "unknown";
}

/**
 * Whether any of the model's names (general.name, general.finetune, general.basename, the file's name) says Instruct
 * or chat. GGUF has no field for "tuned for a chat template", and converters put the Hugging Face repository name
 * (CodeLlama-7b-Instruct-hf) or the finetune ("Instruct") in these; TheBloke's files are named codellama-7b-instruct.*.
 */
export function looksChatTuned(names: readonly (string | undefined)[]): boolean {
  return names.some((name) => name !== undefined && /(^|[^a-z])(instruct|chat)([^a-z]|$)/i.test(name));
}
