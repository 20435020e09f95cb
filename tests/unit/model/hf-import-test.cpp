// Pieces of the Hugging Face importer checked against values llama.cpp's converter produces.
#include <gtest/gtest.h>

#include <cstring>

#include "edgeq/core/error.h"
#include "model/hf-import.h"
#include "model/hf-provenance.h"

namespace edgeq::hf {
namespace {

// Llama 3.2 1B/3B (head_dim 64, factor 32, theta 500000): the converter's table.
TEST(Llama3RopeFactors, MatchTheConvertersTable) {
    const std::vector<float> v = llama3_rope_factors(500000.0, 64, 32.0, 1.0, 4.0, 8192.0);
    ASSERT_EQ(v.size(), 32u);
    for (int k = 0; k <= 14; ++k) EXPECT_EQ(v[k], 1.0f) << k;
    EXPECT_EQ(v[15], 1.6513293f);
    EXPECT_EQ(v[16], 3.2922628f);
    EXPECT_EQ(v[17], 9.666731f);
    for (int k = 18; k < 32; ++k) EXPECT_EQ(v[k], 32.0f) << k;
}

TEST(RopePermutation, InterleavesTheHalvesOfEachHead) {
    // Two heads of 6 rows: [a0 a1 a2 b0 b1 b2] -> [a0 b0 a1 b1 a2 b2] per head.
    const std::vector<int64_t> map = rope_permutation(12, 2);
    EXPECT_EQ(map, (std::vector<int64_t>{0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11}));
    EXPECT_THROW(rope_permutation(10, 4), Error);
}

TEST(LayerNames, ParseAndMap) {
    const auto parsed = parse_layer_name("model.layers.12.self_attn.q_proj.bias");
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->layer, 12);
    EXPECT_EQ(parsed->part, "self_attn.q_proj");
    EXPECT_EQ(parsed->suffix, ".bias");
    EXPECT_FALSE(parse_layer_name("model.layers.x.mlp.up_proj.weight").has_value());
    EXPECT_FALSE(parse_layer_name("model.embed_tokens.weight").has_value());
    const std::vector<std::pair<std::string_view, std::string_view>> table = {
        {"mlp.up_proj", "ffn_up"}};
    EXPECT_EQ(map_with_table("model.layers.3.mlp.up_proj.weight", table), "blk.3.ffn_up.weight");
    EXPECT_EQ(map_with_table("lm_head.weight", table), "output.weight");
    EXPECT_FALSE(map_with_table("model.layers.3.mlp.down_proj.weight", table).has_value());
}

// The converter's labels for real parameter counts.
TEST(Provenance, SizeLabels) {
    EXPECT_EQ(size_label(1100048384), "1.1B");
    EXPECT_EQ(size_label(134515008), "135M");
    EXPECT_EQ(size_label(8030261248), "8.0B");
    EXPECT_EQ(size_label(369664), "370K");
}

std::string key(const GgufMetadata& m, const char* name) {
    for (const auto& [k, v] : m) {
        if (k == name) return v.to_string();
    }
    return "(absent)";
}

// Examples from llama.cpp's converter on real model ids (spec of the naming heuristic).
TEST(Provenance, ModelIdComponents) {
    const nlohmann::json none = nlohmann::json::object();
    GgufMetadata m = provenance_metadata("/x/TinyLlama-1.1B-Chat-v1.0", none, 1100048384);
    EXPECT_EQ(key(m, "general.name"), "TinyLlama 1.1B Chat v1.0");
    EXPECT_EQ(key(m, "general.basename"), "TinyLlama");
    EXPECT_EQ(key(m, "general.finetune"), "Chat");
    EXPECT_EQ(key(m, "general.version"), "v1.0");
    EXPECT_EQ(key(m, "general.size_label"), "1.1B");
    m = provenance_metadata("/x/Qwen2.5-0.5B-Instruct", none, 494032768);
    EXPECT_EQ(key(m, "general.basename"), "Qwen2.5");
    EXPECT_EQ(key(m, "general.finetune"), "Instruct");
    EXPECT_EQ(key(m, "general.size_label"), "0.5B");
    m = provenance_metadata("/x/Phi-3-mini-4k-instruct", none, 3821079552);
    EXPECT_EQ(key(m, "general.basename"), "Phi-3");
    EXPECT_EQ(key(m, "general.finetune"), "4k-instruct");
    EXPECT_EQ(key(m, "general.size_label"), "mini");
    m = provenance_metadata("/x/gemma-2-2b-it", none, 2614341888);
    EXPECT_EQ(key(m, "general.basename"), "gemma-2");
    EXPECT_EQ(key(m, "general.finetune"), "it");
    EXPECT_EQ(key(m, "general.size_label"), "2B");
}

}  // namespace
}  // namespace edgeq::hf
