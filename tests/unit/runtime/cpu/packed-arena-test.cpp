// PackedArena: the pieces it hands out are aligned, in order, within the capacity, and all of
// it is usable memory; an arena of 2 MiB or more starts on a 2 MiB boundary. Weights packed
// into one shared arena: packed_bytes() is what each takes, their products equal those of
// weights packed alone, and they stay valid after the arena's own handle is gone.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "edgeq/core/error.h"
#include "kernel-test-util.h"

namespace edgeq::cpu {
namespace {

TEST(PackedArena, HandsOutAlignedPiecesInOrderWithinItsCapacity) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (size_t capacity :
         {size_t{64}, size_t{1000}, size_t{4096}, size_t{3} << 20, (size_t{5} << 20) + 12345}) {
        SCOPED_TRACE("capacity " + std::to_string(capacity));
        const auto arena = PackedArena::create(capacity);
        EXPECT_EQ(arena->capacity(), capacity);
        EXPECT_EQ(arena->used(), 0u);
        std::vector<std::pair<uint8_t*, size_t>> pieces;
        for (;;) {
            const size_t want = static_cast<size_t>(random.uniform_int(1, 200000));
            const size_t rounded =
                (want + PackedArena::k_align - 1) / PackedArena::k_align * PackedArena::k_align;
            if (rounded > capacity - arena->used()) {
                EXPECT_THROW(arena->take(want), Error);
                break;
            }
            const size_t used = arena->used();
            uint8_t* p = arena->take(want);
            EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % PackedArena::k_align, 0u);
            if (!pieces.empty()) {
                EXPECT_EQ(p, pieces.back().first + pieces.back().second);
            }
            EXPECT_EQ(arena->used(), used + rounded);
            pieces.emplace_back(p, rounded);
        }
        if (capacity >= (size_t{2} << 20) && !pieces.empty()) {
            EXPECT_EQ(reinterpret_cast<uintptr_t>(pieces.front().first) % (size_t{2} << 20), 0u);
        }
        // Every byte handed out can be written and read back.
        for (size_t i = 0; i < pieces.size(); ++i)
            std::memset(pieces[i].first, static_cast<int>(i + 1), pieces[i].second);
        for (size_t i = 0; i < pieces.size(); ++i) {
            const uint8_t* p = pieces[i].first;
            EXPECT_EQ(p[0], static_cast<uint8_t>(i + 1));
            EXPECT_EQ(p[pieces[i].second - 1], static_cast<uint8_t>(i + 1));
        }
    }
    EXPECT_THROW(PackedArena::create(100)->take(101), Error);
}

TEST(PackedArena, WeightsInOneArenaMatchWeightsPackedAlone) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    ThreadPool pool(2);
    MatmulScratch scratch;
    const struct {
        GgmlType type;
        int64_t n_out, k;
    } matrices[] = {{GgmlType::Q4_0, 37, 96},
                    {GgmlType::Q4_K, 64, 512},
                    {GgmlType::Q6_K, 9, 256},
                    {GgmlType::Q8_0, 16, 64},
                    {GgmlType::Q5_0, 8, 160}};
    for (Isa isa : kernel_test::cpu_isas()) {
        SCOPED_TRACE(isa_name(isa));
        size_t total = 0;
        for (const auto& m : matrices) total += packed_bytes(m.type, m.n_out, m.k, isa);
        if (isa == Isa::scalar) {
            EXPECT_EQ(total, 0u);  // the scalar ISA packs nothing
            continue;
        }
        auto arena = PackedArena::create(total);
        std::vector<std::vector<uint8_t>> rows;
        std::vector<std::unique_ptr<PackedWeights>> shared, alone;
        for (const auto& m : matrices) {
            rows.push_back(kernel_test::random_weights(random, m.type, m.n_out, m.k));
            const size_t used = arena->used();
            shared.push_back(pack_weights(m.type, rows.back().data(), m.n_out, m.k, pool, isa,
                                          PackSource::memory, arena));
            ASSERT_NE(shared.back(), nullptr);
            EXPECT_EQ(arena->used() - used, packed_bytes(m.type, m.n_out, m.k, isa));
            alone.push_back(pack_weights(m.type, rows.back().data(), m.n_out, m.k, pool, isa));
        }
        EXPECT_EQ(arena->used(), total);
        arena.reset();  // the weights keep the arena's memory
        for (size_t i = 0; i < shared.size(); ++i) {
            const auto& m = matrices[i];
            for (int64_t n_rows : {int64_t{1}, int64_t{3}, int64_t{5}}) {
                const std::vector<float> x = random.normal(static_cast<size_t>(n_rows * m.k));
                std::vector<float> a(static_cast<size_t>(n_rows * m.n_out), NAN);
                std::vector<float> b(a.size(), NAN);
                matmul(*shared[i], x.data(), n_rows, a.data(), pool, scratch);
                matmul(*alone[i], x.data(), n_rows, b.data(), pool, scratch);
                EXPECT_EQ(a, b) << dtype(m.type).name << " m " << n_rows;
            }
        }
    }
    EXPECT_EQ(packed_bytes(GgmlType::F32, 8, 64), 0u);
    EXPECT_EQ(packed_bytes(GgmlType::Q4_0, 0, 64), 0u);
}

}  // namespace
}  // namespace edgeq::cpu
