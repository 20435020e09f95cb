// llama_greedy: llama.cpp's greedy (argmax) continuation of prompts, as JSON on stdout.
//
//   llama_greedy MODEL.gguf THREADS N_PREDICT [--kv f16|f32] [--flash-attn auto|on|off]
//                (--text TEXT | --ids ID,ID,...)...
//
// Each --text is tokenized as llama.cpp tokenizes a prompt: the vocabulary's special tokens
// added (BOS when the file asks for it), control-token text not parsed; --ids gives the ids.
// Each prompt gets a fresh context: the prompt in one llama_decode, then N_PREDICT tokens one
// at a time, each the argmax of the last logits (the lowest id on a tie); an end-of-generation
// token does not stop it. CPU only. The defaults (F16 KV cache, flash attention auto) are
// llama_context_default_params()'s.
//
// Output: {"n_vocab", "kv", "flash_attn", "runs": [one per prompt, in order: {"prompt_ids",
// "generated_ids", "top2": [[id1, logit1, id2, logit2] per step: the two largest logits],
// "first_eog": the step of the first end-of-generation token or -1, "pieces_hex": each
// generated token's text as llama_token_to_piece renders it without special tokens, in hex}]}.
// Used by bench/greedy_vs_llamacpp.py; stable llama.h API only.
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

struct options {
    int n_threads;
    int n_predict;
    enum ggml_type kv_type;
    enum llama_flash_attn_type flash_attn;
};

static void quiet(enum ggml_log_level level, const char* text, void* user_data) {
    (void)user_data;
    if (level >= GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

static bool no_progress(float progress, void* user_data) {
    (void)progress;
    (void)user_data;
    return true;
}

static int usage(const char* argv0) {
    fprintf(stderr,
            "usage: %s MODEL.gguf THREADS N_PREDICT [--kv f16|f32] [--flash-attn auto|on|off] "
            "(--text TEXT | --ids ID,ID,...)...\n",
            argv0);
    return 2;
}

// Parses "1,2,3" into ids (at most max); returns the count, or -1 on a malformed list.
static int parse_ids(const char* text, llama_token* ids, int max) {
    int n = 0;
    const char* p = text;
    while (*p != '\0') {
        char* end = NULL;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || n >= max) {
            return -1;
        }
        ids[n++] = (llama_token)v;
        if (*end == ',') {
            ++end;
        } else if (*end != '\0') {
            return -1;
        }
        p = end;
    }
    return n;
}

static void print_ids(const char* key, const llama_token* ids, int n) {
    printf("\"%s\": [", key);
    for (int i = 0; i < n; ++i) {
        printf(i ? ", %d" : "%d", ids[i]);
    }
    printf("]");
}

// Tokenizes (is_text) or parses one prompt, generates greedily and prints its JSON object.
// Returns 0, or the exit status of a failure (already reported on stderr).
static int run_prompt(struct llama_model* model, const struct options* opt, const char* arg,
                      int is_text) {
    const struct llama_vocab* vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    const int n_predict = opt->n_predict;

    // At most one id per byte, plus the special tokens.
    const int max_prompt = (int)strlen(arg) + 8;
    llama_token* prompt = malloc(sizeof(llama_token) * (size_t)max_prompt);
    llama_token* generated = malloc(sizeof(llama_token) * (size_t)(n_predict + 1));
    int* top_ids = malloc(sizeof(int) * 2 * (size_t)(n_predict + 1));
    float* top_logits = malloc(sizeof(float) * 2 * (size_t)(n_predict + 1));
    const int n_prompt = is_text ? llama_tokenize(vocab, arg, (int32_t)strlen(arg), prompt,
                                                  max_prompt, /*add_special=*/true,
                                                  /*parse_special=*/false)
                                 : parse_ids(arg, prompt, max_prompt);
    if (n_prompt <= 0) {
        fprintf(stderr, "llama_greedy: the prompt '%s' has no tokens (or is a malformed --ids)\n",
                arg);
        return 2;
    }
    for (int i = 0; i < n_prompt; ++i) {
        if (prompt[i] >= n_vocab) {
            fprintf(stderr, "llama_greedy: token id %d is outside the vocabulary (%d)\n", prompt[i],
                    n_vocab);
            return 2;
        }
    }

    struct llama_context_params cparams = llama_context_default_params();
    cparams.n_ctx = (uint32_t)(n_prompt + n_predict + 16);
    cparams.n_batch = cparams.n_ctx;
    cparams.n_ubatch = cparams.n_ctx;
    cparams.n_threads = opt->n_threads;
    cparams.n_threads_batch = opt->n_threads;
    cparams.type_k = opt->kv_type;
    cparams.type_v = opt->kv_type;
    cparams.flash_attn_type = opt->flash_attn;
    struct llama_context* ctx = llama_init_from_model(model, cparams);
    if (ctx == NULL) {
        fprintf(stderr, "llama_greedy: cannot create a context\n");
        return 1;
    }

    struct llama_batch batch = llama_batch_get_one(prompt, n_prompt);
    for (int step = 0; step < n_predict; ++step) {
        if (llama_decode(ctx, batch) != 0) {
            fprintf(stderr, "llama_greedy: llama_decode failed at step %d\n", step);
            return 1;
        }
        const float* logits = llama_get_logits_ith(ctx, -1);
        int best = 0;
        int second = -1;
        for (int v = 1; v < n_vocab; ++v) {
            if (logits[v] > logits[best]) {
                second = best;
                best = v;
            } else if (second < 0 || logits[v] > logits[second]) {
                second = v;
            }
        }
        generated[step] = best;
        top_ids[2 * step] = best;
        top_ids[2 * step + 1] = second;
        top_logits[2 * step] = logits[best];
        top_logits[2 * step + 1] = logits[second];
        batch = llama_batch_get_one(&generated[step], 1);
    }

    printf("{");
    print_ids("prompt_ids", prompt, n_prompt);
    printf(",\n  ");
    print_ids("generated_ids", generated, n_predict);
    printf(",\n  \"top2\": [");
    for (int i = 0; i < n_predict; ++i) {
        printf("%s[%d, %.9g, %d, %.9g]", i ? ", " : "", top_ids[2 * i], top_logits[2 * i],
               top_ids[2 * i + 1], top_logits[2 * i + 1]);
    }
    int first_eog = -1;
    for (int i = 0; i < n_predict && first_eog < 0; ++i) {
        if (llama_vocab_is_eog(vocab, generated[i])) {
            first_eog = i;
        }
    }
    printf("],\n  \"first_eog\": %d,\n  \"pieces_hex\": [", first_eog);
    for (int i = 0; i < n_predict; ++i) {
        char piece[256];
        const int n = llama_token_to_piece(vocab, generated[i], piece, (int32_t)sizeof(piece), 0,
                                           /*special=*/false);
        printf("%s\"", i ? ", " : "");
        for (int b = 0; b < n; ++b) {
            printf("%02x", (unsigned char)piece[b]);
        }
        printf("\"");
    }
    printf("]}");

    llama_free(ctx);
    free(top_logits);
    free(top_ids);
    free(generated);
    free(prompt);
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 6) {
        return usage(argv[0]);
    }
    const char* model_path = argv[1];
    struct options opt = {atoi(argv[2]), atoi(argv[3]), GGML_TYPE_F16, LLAMA_FLASH_ATTN_TYPE_AUTO};
    const char* kv = "f16";
    const char* flash = "auto";
    int first_prompt = 4;
    for (; first_prompt + 1 < argc; first_prompt += 2) {
        if (strcmp(argv[first_prompt], "--kv") == 0) {
            kv = argv[first_prompt + 1];
        } else if (strcmp(argv[first_prompt], "--flash-attn") == 0) {
            flash = argv[first_prompt + 1];
        } else {
            break;
        }
    }
    if (strcmp(kv, "f32") == 0) {
        opt.kv_type = GGML_TYPE_F32;
    } else if (strcmp(kv, "f16") != 0) {
        return usage(argv[0]);
    }
    if (strcmp(flash, "on") == 0) {
        opt.flash_attn = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    } else if (strcmp(flash, "off") == 0) {
        opt.flash_attn = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    } else if (strcmp(flash, "auto") != 0) {
        return usage(argv[0]);
    }
    if (opt.n_threads < 1 || opt.n_predict < 0 || first_prompt >= argc ||
        (argc - first_prompt) % 2 != 0) {
        return usage(argv[0]);
    }
    for (int i = first_prompt; i < argc; i += 2) {
        if (strcmp(argv[i], "--text") != 0 && strcmp(argv[i], "--ids") != 0) {
            return usage(argv[0]);
        }
    }

    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mparams = llama_model_default_params();
    mparams.n_gpu_layers = 0;
    mparams.progress_callback = no_progress;
    struct llama_model* model = llama_model_load_from_file(model_path, mparams);
    if (model == NULL) {
        fprintf(stderr, "llama_greedy: cannot load %s\n", model_path);
        return 1;
    }

    printf("{\"n_vocab\": %d, \"kv\": \"%s\", \"flash_attn\": \"%s\", \"runs\": [\n ",
           llama_vocab_n_tokens(llama_model_get_vocab(model)), kv, flash);
    for (int i = first_prompt; i < argc; i += 2) {
        if (i > first_prompt) {
            printf(",\n ");
        }
        const int status = run_prompt(model, &opt, argv[i + 1], strcmp(argv[i], "--text") == 0);
        if (status != 0) {
            return status;
        }
    }
    printf("]}\n");

    llama_model_free(model);
    llama_backend_free();
    return 0;
}
