// llama_logits: the logits that llama.cpp's runtime computes for every position of a token
// sequence, written as raw float32 [n_tokens][n_vocab] (row-major, little-endian).
//
//   llama_logits MODEL.gguf OUT.f32 THREADS ID [ID...]
//
// One llama_decode of the whole sequence (one sequence, positions 0..n-1, every position an
// output), CPU only, F32 KV cache, no flash attention. Used by bench/convert_vs_llamacpp.py,
// which compiles it against a llama.cpp build (libllama + llama.h); it uses only the stable
// part of llama.h.
#include <stdio.h>
#include <stdlib.h>

#include "llama.h"

static void quiet(enum ggml_log_level level, const char* text, void* user_data) {
    (void)user_data;
    if (level >= GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

int main(int argc, char** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL.gguf OUT.f32 THREADS ID [ID...]\n", argv[0]);
        return 2;
    }
    const char* model_path = argv[1];
    const char* out_path = argv[2];
    const int n_threads = atoi(argv[3]);
    const int n_tokens = argc - 4;

    llama_log_set(quiet, NULL);
    llama_backend_init();

    struct llama_model_params mparams = llama_model_default_params();
    mparams.n_gpu_layers = 0;
    struct llama_model* model = llama_model_load_from_file(model_path, mparams);
    if (model == NULL) {
        fprintf(stderr, "llama_logits: cannot load %s\n", model_path);
        return 1;
    }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

    struct llama_context_params cparams = llama_context_default_params();
    cparams.n_ctx = (uint32_t)(n_tokens < 256 ? 256 : n_tokens);
    cparams.n_batch = cparams.n_ctx;
    cparams.n_ubatch = cparams.n_ctx;
    cparams.n_threads = n_threads;
    cparams.n_threads_batch = n_threads;
    // F32 KV cache and no flash attention: the CPU flash-attention path rounds Q to F16 and
    // alone costs ~1e-3 relative error in the logits; without it F32 models agree with
    // transformers' float32 logits to ~1e-6 (~1e-4 for Gemma, whose GELU uses an F16 table).
    cparams.type_k = GGML_TYPE_F32;
    cparams.type_v = GGML_TYPE_F32;
    cparams.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    struct llama_context* ctx = llama_init_from_model(model, cparams);
    if (ctx == NULL) {
        fprintf(stderr, "llama_logits: cannot create a context for %s\n", model_path);
        return 1;
    }

    struct llama_batch batch = llama_batch_init(n_tokens, 0, 1);
    for (int i = 0; i < n_tokens; ++i) {
        char* end = NULL;
        long id = strtol(argv[4 + i], &end, 10);
        if (*end != '\0' || id < 0 || id >= n_vocab) {
            fprintf(stderr, "llama_logits: bad token id '%s' (vocabulary of %d)\n", argv[4 + i],
                    n_vocab);
            return 2;
        }
        batch.token[i] = (llama_token)id;
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = n_tokens;
    if (llama_decode(ctx, batch) != 0) {
        fprintf(stderr, "llama_logits: llama_decode failed\n");
        return 1;
    }

    FILE* out = fopen(out_path, "wb");
    if (out == NULL) {
        fprintf(stderr, "llama_logits: cannot write %s\n", out_path);
        return 1;
    }
    for (int i = 0; i < n_tokens; ++i) {
        const float* row = llama_get_logits_ith(ctx, i);
        if (row == NULL || fwrite(row, sizeof(float), (size_t)n_vocab, out) != (size_t)n_vocab) {
            fprintf(stderr, "llama_logits: no logits for position %d\n", i);
            return 1;
        }
    }
    if (fclose(out) != 0) {
        fprintf(stderr, "llama_logits: cannot write %s\n", out_path);
        return 1;
    }
    fprintf(stderr, "llama_logits: %d positions x %d logits\n", n_tokens, n_vocab);

    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
