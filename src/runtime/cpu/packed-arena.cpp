// PackedArena (edgeq/runtime/cpu/matmul.h): one huge-page-aligned anonymous mapping for the
// packed copies of a model's weights.
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "edgeq/core/error.h"
#include "edgeq/runtime/cpu/matmul.h"

namespace edgeq::cpu {

namespace {

constexpr size_t k_huge_page = size_t{2} << 20;
constexpr size_t k_page = 4096;

size_t round_up(size_t n, size_t to) {
    return (n + to - 1) / to * to;
}

}  // namespace

// The mapping starts on a 2 MiB boundary (a larger reservation, trimmed) so that every whole
// 2 MiB of it can be a huge page; its end is not rounded up, so that the last partial 2 MiB
// stays in 4 KiB pages instead of committing a huge page mostly unused.
std::shared_ptr<PackedArena> PackedArena::create(size_t capacity) {
    const size_t mapped = round_up(capacity == 0 ? 1 : capacity, k_page);
    const bool huge = mapped >= k_huge_page;
    const size_t reserve = huge ? mapped + k_huge_page : mapped;
    void* raw = mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        fail("pack_weights: cannot allocate {} bytes: {}", capacity, std::strerror(errno));
    auto* base = static_cast<uint8_t*>(raw);
    if (huge) {
        const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
        const uintptr_t aligned = round_up(start, k_huge_page);
        if (aligned > start) munmap(raw, aligned - start);
        const uintptr_t end = aligned + mapped;
        if (start + reserve > end) munmap(reinterpret_cast<void*>(end), start + reserve - end);
        base = reinterpret_cast<uint8_t*>(aligned);
#ifdef MADV_HUGEPAGE
        madvise(base, mapped, MADV_HUGEPAGE);  // a hint; the kernel may refuse it
#endif
    }
    return std::shared_ptr<PackedArena>(new PackedArena(base, mapped, capacity));
}

PackedArena::~PackedArena() {
    munmap(base_, mapped_);
}

uint8_t* PackedArena::take(size_t bytes) {
    const size_t n = round_up(bytes, k_align);
    if (n > capacity_ - used_)
        fail("pack_weights: {} more bytes do not fit the {} left of the packed weights' arena", n,
             capacity_ - used_);
    uint8_t* p = base_ + used_;
    used_ += n;
    return p;
}

}  // namespace edgeq::cpu
