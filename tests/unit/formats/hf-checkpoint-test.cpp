// Hugging Face checkpoint directories: a single model.safetensors, an index and its shards,
// a complete set of shards without an index; and one clear Error for each way a directory
// can be wrong (no config, bad config, no weights, a missing shard, a tensor absent from its
// shard or in two shards, a truncated shard).
#include "edgeq/formats/hf-checkpoint.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "edgeq/core/error.h"
#include "test-random.h"

namespace edgeq {
namespace {

namespace fs = std::filesystem;

class HfCheckpointTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string pattern = ::testing::TempDir() + "edgeq-hf-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string file(const std::string& name) const { return (fs::path(dir_) / name).string(); }

    void write_text(const std::string& name, const std::string& text) const {
        std::ofstream(file(name), std::ios::binary) << text;
    }

    void write_config(const std::string& architecture = "LlamaForCausalLM") const {
        write_text("config.json", R"({"architectures": [")" + architecture +
                                      R"("], "hidden_size": 8, "model_type": "llama"})");
    }

    struct Tensor {
        std::string name;
        std::vector<int64_t> shape;
        std::vector<uint8_t> bytes;  // F32
    };

    Tensor random_tensor(const std::string& name) {
        Tensor t{name, {random_.uniform_int(1, 5), random_.uniform_int(1, 9)}, {}};
        t.bytes.resize(static_cast<size_t>(t.shape[0] * t.shape[1]) * 4);
        for (auto& b : t.bytes) b = static_cast<uint8_t>(random_.engine()());
        return t;
    }

    void write_shard(const std::string& name, const std::vector<Tensor>& tensors) const {
        SafetensorsWriter out(file(name));
        out.add_metadata("format", "pt");
        for (const Tensor& t : tensors) out.add_tensor(t.name, SafetensorsDType::F32, t.shape);
        for (const Tensor& t : tensors) out.write(t.bytes);
        out.finish();
    }

    // model.safetensors.index.json mapping each tensor to its shard.
    void write_index(const std::vector<std::pair<std::string, std::string>>& weight_map) const {
        nlohmann::json index = {{"metadata", {{"total_size", 1234}}}, {"weight_map", {}}};
        for (const auto& [tensor, shard] : weight_map) index["weight_map"][tensor] = shard;
        write_text("model.safetensors.index.json", index.dump(2));
    }

    void expect_open_error(std::vector<std::string> fragments) const {
        try {
            (void)HfCheckpoint::open(dir_);
            ADD_FAILURE() << "no Error; expected one containing '" << fragments[0] << "'";
        } catch (const Error& e) {
            for (const std::string& fragment : fragments) {
                EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
                    << "message: " << e.what() << "\nexpected to contain: " << fragment;
            }
        }
    }

    void expect_tensor(const HfCheckpoint& ckpt, const Tensor& want,
                       const std::string& shard_name) const {
        SCOPED_TRACE(want.name);
        const HfTensor* t = ckpt.find_tensor(want.name);
        ASSERT_NE(t, nullptr);
        EXPECT_EQ(t->shard->path(), file(shard_name));
        EXPECT_EQ(t->tensor->shape, want.shape);
        ASSERT_EQ(t->tensor->n_bytes, want.bytes.size());
        EXPECT_TRUE(std::equal(want.bytes.begin(), want.bytes.end(), t->tensor->data));
        EXPECT_EQ(&ckpt.tensor(want.name), t->tensor);
    }

    testing::Random random_;
    std::string dir_;
};

TEST_F(HfCheckpointTest, OpensSingleFile) {
    SCOPED_TRACE(random_.trace());
    write_config();
    const std::vector<Tensor> tensors = {random_tensor("model.embed_tokens.weight"),
                                         random_tensor("model.layers.0.mlp.up_proj.weight"),
                                         random_tensor("lm_head.weight")};
    write_shard("model.safetensors", tensors);
    // An index beside model.safetensors is ignored, as transformers ignores it.
    write_index({{"other", "model-00001-of-00002.safetensors"}});

    const HfCheckpoint ckpt = HfCheckpoint::open(dir_);
    EXPECT_EQ(ckpt.architecture(), "LlamaForCausalLM");
    EXPECT_EQ(ckpt.config().at("hidden_size"), 8);
    EXPECT_FALSE(ckpt.indexed());
    EXPECT_TRUE(ckpt.index_metadata().is_null());
    ASSERT_EQ(ckpt.shards().size(), 1u);
    ASSERT_EQ(ckpt.tensors().size(), 3u);
    int64_t n_parameters = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
        expect_tensor(ckpt, tensors[i], "model.safetensors");
        EXPECT_EQ(ckpt.tensors()[i].tensor->name, tensors[i].name);  // file order
        n_parameters += tensors[i].shape[0] * tensors[i].shape[1];
    }
    EXPECT_EQ(ckpt.n_parameters(), n_parameters);
    EXPECT_EQ(ckpt.find_tensor("absent"), nullptr);
    try {
        (void)ckpt.tensor("absent");
        ADD_FAILURE() << "no Error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("no tensor 'absent'"), std::string::npos) << e.what();
    }
}

TEST_F(HfCheckpointTest, OpensShardsThroughIndex) {
    SCOPED_TRACE(random_.trace());
    write_config("Qwen2ForCausalLM");
    const std::string s1 = "model-00001-of-00003.safetensors";
    const std::string s2 = "model-00002-of-00003.safetensors";
    const std::string s3 = "model-00003-of-00003.safetensors";
    const std::vector<Tensor> a = {random_tensor("z.first"), random_tensor("b.second")};
    const std::vector<Tensor> b = {random_tensor("a.third")};
    const std::vector<Tensor> c = {random_tensor("m.fourth"), random_tensor("m.fifth")};
    // Written out of order: the checkpoint orders shards by name, not by index order.
    write_shard(s3, c);
    write_shard(s1, a);
    write_shard(s2, b);
    write_shard("stray.safetensors", {random_tensor("stray")});  // not in the index: ignored
    write_index(
        {{"a.third", s2}, {"z.first", s1}, {"m.fifth", s3}, {"b.second", s1}, {"m.fourth", s3}});

    HfCheckpoint opened = HfCheckpoint::open(dir_);
    const HfCheckpoint ckpt = std::move(opened);  // pointers survive a move
    EXPECT_EQ(ckpt.architecture(), "Qwen2ForCausalLM");
    EXPECT_TRUE(ckpt.indexed());
    EXPECT_EQ(ckpt.index_metadata().at("total_size"), 1234);
    ASSERT_EQ(ckpt.shards().size(), 3u);
    EXPECT_EQ(ckpt.shards()[0].path(), file(s1));
    EXPECT_EQ(ckpt.shards()[2].path(), file(s3));
    for (const Tensor& t : a) expect_tensor(ckpt, t, s1);
    for (const Tensor& t : b) expect_tensor(ckpt, t, s2);
    for (const Tensor& t : c) expect_tensor(ckpt, t, s3);
    EXPECT_EQ(ckpt.find_tensor("stray"), nullptr);
    std::vector<std::string> order;
    for (const HfTensor& t : ckpt.tensors()) order.push_back(t.tensor->name);
    EXPECT_EQ(order,
              (std::vector<std::string>{"z.first", "b.second", "a.third", "m.fourth", "m.fifth"}));
    int64_t n = 0;
    for (const auto* group : {&a, &b, &c}) {
        for (const Tensor& t : *group) n += t.shape[0] * t.shape[1];
    }
    EXPECT_EQ(ckpt.n_parameters(), n);
}

TEST_F(HfCheckpointTest, KeepsTensorsTheIndexDoesNotList) {
    write_config();
    write_shard("model-00001-of-00001.safetensors",
                {random_tensor("listed"), random_tensor("extra")});
    write_index({{"listed", "model-00001-of-00001.safetensors"}});
    const HfCheckpoint ckpt = HfCheckpoint::open(dir_);
    EXPECT_EQ(ckpt.tensors().size(), 2u);
    EXPECT_NE(ckpt.find_tensor("extra"), nullptr);
}

TEST_F(HfCheckpointTest, OpensCompleteShardSetWithoutIndex) {
    write_text("config.json", R"({"model_type": "gpt2"})");
    const Tensor t1 = random_tensor("h.0.w");
    const Tensor t2 = random_tensor("h.1.w");
    write_shard("model-00002-of-00002.safetensors", {t2});
    write_shard("model-00001-of-00002.safetensors", {t1});
    const HfCheckpoint ckpt = HfCheckpoint::open(dir_);
    EXPECT_EQ(ckpt.architecture(), "");
    EXPECT_FALSE(ckpt.indexed());
    ASSERT_EQ(ckpt.tensors().size(), 2u);
    expect_tensor(ckpt, t1, "model-00001-of-00002.safetensors");
    expect_tensor(ckpt, t2, "model-00002-of-00002.safetensors");
}

TEST_F(HfCheckpointTest, RejectsIncompleteShardSetWithoutIndex) {
    write_config();
    write_shard("model-00001-of-00003.safetensors", {random_tensor("a")});
    write_shard("model-00003-of-00003.safetensors", {random_tensor("b")});
    expect_open_error({dir_, "not one complete set of shards", "model-00001-of-00003"});
}

TEST_F(HfCheckpointTest, RejectsLoneFileOfAnotherName) {
    write_config();
    write_shard("adapter_model.safetensors", {random_tensor("lora_A")});
    expect_open_error({"no model.safetensors", "adapter_model.safetensors"});
}

TEST_F(HfCheckpointTest, RejectsMissingConfig) {
    write_shard("model.safetensors", {random_tensor("w")});
    expect_open_error({dir_, "no config.json"});
}

TEST_F(HfCheckpointTest, RejectsConfigThatIsNotJsonObject) {
    write_shard("model.safetensors", {random_tensor("w")});
    write_text("config.json", R"({"architectures": ["Llama"],)");
    expect_open_error({file("config.json"), "not valid JSON"});
    write_text("config.json", "[1, 2]");
    expect_open_error({file("config.json"), "expected an object"});
    write_text("config.json", "");
    expect_open_error({file("config.json"), "not valid JSON"});
    write_text("config.json", R"({"architectures": "LlamaForCausalLM"})");
    expect_open_error({file("config.json"), "\"architectures\" must be an array of strings"});
}

TEST_F(HfCheckpointTest, RejectsDirectoryWithoutWeights) {
    write_config();
    expect_open_error({dir_, "no weights", "model.safetensors"});
}

TEST_F(HfCheckpointTest, RejectsMissingShard) {
    write_config();
    write_shard("model-00001-of-00002.safetensors", {random_tensor("a")});
    write_index(
        {{"a", "model-00001-of-00002.safetensors"}, {"b", "model-00002-of-00002.safetensors"}});
    expect_open_error({"model.safetensors.index.json", "shard 'model-00002-of-00002.safetensors'",
                       "'b'", "missing"});
}

TEST_F(HfCheckpointTest, RejectsTensorMissingFromItsShard) {
    write_config();
    write_shard("model-00001-of-00001.safetensors", {random_tensor("a")});
    write_index(
        {{"a", "model-00001-of-00001.safetensors"}, {"b", "model-00001-of-00001.safetensors"}});
    expect_open_error({"model.safetensors.index.json", "tensor 'b'", "does not hold it"});
}

TEST_F(HfCheckpointTest, RejectsTensorInAnotherShardThanListed) {
    write_config();
    write_shard("model-00001-of-00002.safetensors", {random_tensor("a"), random_tensor("c")});
    write_shard("model-00002-of-00002.safetensors", {random_tensor("b")});
    write_index({{"a", "model-00002-of-00002.safetensors"},
                 {"b", "model-00002-of-00002.safetensors"},
                 {"c", "model-00001-of-00002.safetensors"}});
    expect_open_error({"tensor 'a'", "listed in shard 'model-00002-of-00002.safetensors'",
                       "model-00001-of-00002.safetensors"});
}

TEST_F(HfCheckpointTest, RejectsTensorInTwoShards) {
    write_config();
    write_shard("model-00001-of-00002.safetensors", {random_tensor("a"), random_tensor("dup")});
    write_shard("model-00002-of-00002.safetensors", {random_tensor("dup")});
    write_index(
        {{"a", "model-00001-of-00002.safetensors"}, {"dup", "model-00002-of-00002.safetensors"}});
    expect_open_error({"tensor 'dup' is in two shards", "model-00001-of-00002.safetensors",
                       "model-00002-of-00002.safetensors"});
}

TEST_F(HfCheckpointTest, RejectsTruncatedShard) {
    write_config();
    write_shard("model-00001-of-00001.safetensors", {random_tensor("a"), random_tensor("b")});
    write_index(
        {{"a", "model-00001-of-00001.safetensors"}, {"b", "model-00001-of-00001.safetensors"}});
    const std::string shard = file("model-00001-of-00001.safetensors");
    fs::resize_file(shard, fs::file_size(shard) - 1);
    expect_open_error({shard, "past the end"});
}

TEST_F(HfCheckpointTest, RejectsMalformedIndex) {
    write_config();
    write_shard("model-00001-of-00001.safetensors", {random_tensor("a")});
    write_text("model.safetensors.index.json", R"({"metadata": {}})");
    expect_open_error({"model.safetensors.index.json", "no \"weight_map\""});
    write_text("model.safetensors.index.json", R"({"weight_map": {"a": 3}})");
    expect_open_error({"entry 'a'", "expected a file name"});
    write_text("model.safetensors.index.json", R"({"weight_map": {"a": "../model.safetensors"}})");
    expect_open_error({"'../model.safetensors' is not a file name"});
    write_text("model.safetensors.index.json", R"({"weight_map": {}})");
    expect_open_error({"lists no tensors"});
    write_text("model.safetensors.index.json", R"({"weight_map": )");
    expect_open_error({"model.safetensors.index.json", "not valid JSON"});
}

TEST_F(HfCheckpointTest, RejectsPathThatIsNotDirectory) {
    write_config();
    try {
        (void)HfCheckpoint::open(file("config.json"));
        ADD_FAILURE() << "no Error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("not a directory"), std::string::npos) << e.what();
    }
    try {
        (void)HfCheckpoint::open(file("absent"));
        ADD_FAILURE() << "no Error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace edgeq
