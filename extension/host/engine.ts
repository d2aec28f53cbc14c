// The engine API of DESIGN.md over the native addon: prompts given as tokens, plain text, an infill pair or a chat,
// AbortSignal cancellation, and streamed text. Used by the command line and the engine host process.
import { fileTypeName, looksChatTuned } from "../core/model-type";
import {
  loadAddon,
  type ChatTurn,
  type InfillOrder,
  type KvPlan,
  type KvPolicyOptions,
  type KvStats,
  type NativeGenerateResult,
  type NativeModel,
  type NativeSession,
  type SamplingOptions,
  type SessionOptions,
} from "./native";

export type PromptInput =
  | { tokens: Int32Array | number[] }
  | { prompt: string }
  | { infill: { prefix: string; suffix: string; format?: InfillOrder } }
  | { chat: { system?: string; turns: ChatTurn[] } };

export interface GenerateOptions extends SamplingOptions {
  signal?: AbortSignal;
  /** Each piece of released text (complete characters, stop strings held back), as it is generated. */
  onToken?: (text: string, token: number | null) => void;
}

export type GenerateResult = NativeGenerateResult;

export class Session {
  /** Set from the first line of a request to its end, so a second request is refused at once, never raced. */
  private busy = false;

  constructor(
    private readonly model: NativeModel,
    private readonly native: NativeSession,
  ) {}

  get contextSize(): number {
    return this.native.contextSize;
  }

  async promptTokens(input: PromptInput): Promise<Int32Array | number[]> {
    if ("tokens" in input) return input.tokens;
    if ("prompt" in input) return this.model.tokenize(input.prompt);
    if ("infill" in input) {
      if (!this.model.info.hasInfill) {
        throw new Error(
          `${this.model.info.config.name} has no infill tokens (▁<PRE>/▁<SUF>/▁<MID>): use a CodeLLaMA 7B or 13B base or Instruct model`,
        );
      }
      return this.model.infillPrompt(input.infill.prefix, input.infill.suffix, input.infill.format ?? "spm");
    }
    return this.model.chatPrompt(input.chat.system ?? "", input.chat.turns);
  }

  generate(input: PromptInput, options: GenerateOptions = {}): Promise<GenerateResult> {
    const { signal, onToken, ...sampling } = options;
    return this.exclusive(signal, async () => {
      const tokens = await this.promptTokens(input);
      signal?.throwIfAborted();
      return this.native.generate(tokens, sampling, onToken ? (token, text) => onToken(text, token) : undefined);
    });
  }

  evaluate(tokens: Int32Array | number[], options: { logits?: "last" | "all"; signal?: AbortSignal } = {}): Promise<Float32Array> {
    return this.exclusive(options.signal, () => this.native.evaluate(tokens, { logits: options.logits ?? "last" }));
  }

  /** Teacher-forced log-probabilities of tokens[context..] under the session's KV policy. */
  logProbs(tokens: Int32Array | number[], context: number, options: { signal?: AbortSignal } = {}): Promise<Float64Array> {
    return this.exclusive(options.signal, () => this.native.logProbs(tokens, context));
  }

  private async exclusive<T>(signal: AbortSignal | undefined, request: () => Promise<T>): Promise<T> {
    if (this.busy) throw new Error("the session is busy with another request");
    signal?.throwIfAborted();
    this.busy = true;
    const cancel = () => this.native.cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      return await request();
    } finally {
      signal?.removeEventListener("abort", cancel);
      this.busy = false;
    }
  }

  kvStats(): KvStats {
    return this.native.kvStats();
  }

  dispose(): void {
    this.native.dispose();
  }
}

/** What a model file says about itself beyond its shape, read from its header (the weights are not touched). */
export interface ModelFileDetails {
  /** Bytes of the weight tensors. */
  weightsBytes: number;
  fileType: string;
  chatTuned: boolean;
}

export async function describeModelFile(path: string): Promise<ModelFileDetails> {
  const { metadata, tensors } = await loadAddon().inspect(path);
  const text = (key: string) => (typeof metadata[key] === "string" ? (metadata[key] as string) : undefined);
  return {
    weightsBytes: tensors.reduce((sum, tensor) => sum + Number(tensor.bytes), 0),
    fileType: fileTypeName(metadata["general.file_type"]),
    chatTuned: looksChatTuned([text("general.name"), text("general.finetune"), text("general.basename"), path.split(/[\\/]/).pop()]),
  };
}

/** What a KV policy keeps, computed without a model. */
export function planKv(options: { layers: number; kvDim: number; tokens: number; kv?: KvPolicyOptions }): KvPlan {
  return loadAddon().planKv(options);
}

export class Model {
  private constructor(private readonly native: NativeModel) {}

  static async load(path: string): Promise<Model> {
    return new Model(await loadAddon().loadModel(path));
  }

  get info() {
    return this.native.info;
  }

  tokenize(text: string, options?: Parameters<NativeModel["tokenize"]>[1]): Promise<Int32Array> {
    return this.native.tokenize(text, options);
  }

  detokenize(tokens: Int32Array | number[]): Promise<string> {
    return this.native.detokenize(tokens);
  }

  async createSession(options: SessionOptions = {}): Promise<Session> {
    return new Session(this.native, await this.native.createSession(options));
  }

  /** What `kv` keeps for a prompt of `tokens` tokens in this model. */
  planKv(tokens: number, kv: KvPolicyOptions = {}): KvPlan {
    const config = this.native.info.config;
    return planKv({ layers: config.layers, kvDim: config.kvHeads * config.headDim, tokens, kv });
  }

  dispose(): void {
    this.native.dispose();
  }
}
