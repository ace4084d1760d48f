// Encodes a JSONL corpus with @huggingface/tokenizers (the reference for basin's tokenizers).
// usage: node reference_encode.mjs TOKENIZER_JSON CORPUS_JSONL OUTPUT_JSONL [--no-special]
import { Tokenizer } from "@huggingface/tokenizers";
import fs from "fs";
import path from "path";

const [tokenizerPath, corpusPath, outputPath, flag] = process.argv.slice(2);
const tokenizerJson = JSON.parse(fs.readFileSync(tokenizerPath, "utf8"));
let config = {};
const configPath = path.join(path.dirname(tokenizerPath), "tokenizer_config.json");
if (fs.existsSync(configPath)) config = JSON.parse(fs.readFileSync(configPath, "utf8"));
const tokenizer = new Tokenizer(tokenizerJson, config);
const addSpecial = flag !== "--no-special";
const lines = fs.readFileSync(corpusPath, "utf8").split("\n").filter((l) => l.length > 0);
const out = [];
for (const line of lines) {
  const { text, text_pair } = JSON.parse(line);
  const options = { add_special_tokens: addSpecial };
  if (typeof text_pair === "string") options.text_pair = text_pair;
  out.push(JSON.stringify({ ids: tokenizer.encode(text, options).ids }));
}
fs.writeFileSync(outputPath, out.join("\n") + "\n");
