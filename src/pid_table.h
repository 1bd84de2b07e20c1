// The manager's map from a worker's pid to its slot: open addressing with linear
// probing in one flat array. Sized for the pool when the pool grows (reserve), it
// never allocates while workers are reaped and forked, and a lookup, an insert or
// an erase touches one or two cache lines of one allocation: after each fork every
// page the manager writes is copied, so its tables should be few and small.
#pragma once

#include <cstddef>
#include <cstdint>
#include <sys/types.h>
#include <vector>

namespace fcgipm {

class pid_table {
public:
    static constexpr size_t npos = static_cast<size_t>(-1);

    // Room for n entries without growing (at most half the cells are used).
    void reserve(size_t n) {
        size_t cells = 8;
        while (cells < 2 * n)
            cells *= 2;
        if (cells > cells_.size())
            rehash(cells);
    }

    // The slot of pid, or npos (always for a pid <= 0: no worker has one).
    size_t find(pid_t pid) const {
        if (cells_.empty() || pid <= 0)
            return npos;
        for (size_t i = home(pid);; i = next(i)) {
            if (cells_[i].pid == pid)
                return cells_[i].index;
            if (cells_[i].pid == 0)
                return npos;
        }
    }

    // Adds pid, or sets its index if present; a pid <= 0 is not stored (0 marks an
    // empty cell). May allocate (std::bad_alloc) only past the reserved size.
    void set(pid_t pid, size_t index) {
        if (pid <= 0)
            return;
        reserve(size_ + 1);
        size_t i = home(pid);
        while (cells_[i].pid != 0 && cells_[i].pid != pid)
            i = next(i);
        size_ += cells_[i].pid == 0;
        cells_[i] = {pid, index};
    }

    // Removes pid if present. The entries after it in its run move back into the gap
    // (no tombstones: lookups stay short however many workers have come and gone).
    void erase(pid_t pid) {
        if (cells_.empty() || pid <= 0)
            return;
        size_t gap = home(pid);
        while (cells_[gap].pid != pid) {
            if (cells_[gap].pid == 0)
                return;
            gap = next(gap);
        }
        for (size_t i = next(gap); cells_[i].pid != 0; i = next(i)) {
            // An entry may fill the gap if its home is not between the gap and it.
            size_t h = home(cells_[i].pid);
            bool stays = gap < i ? (gap < h && h <= i) : (gap < h || h <= i);
            if (!stays) {
                cells_[gap] = cells_[i];
                gap = i;
            }
        }
        cells_[gap] = {};
        --size_;
    }

    void clear() {
        for (cell &c : cells_)
            c = {};
        size_ = 0;
    }

    size_t size() const { return size_; }

private:
    struct cell {
        pid_t pid = 0;  // 0: empty
        size_t index = 0;
    };

    size_t home(pid_t pid) const {
        // Fibonacci hashing: the top bits of the product, so nearby pids spread out.
        return static_cast<size_t>((static_cast<uint64_t>(pid) * 0x9E3779B97F4A7C15ull) >> shift_);
    }
    size_t next(size_t i) const { return (i + 1) & (cells_.size() - 1); }

    void rehash(size_t cells) {
        std::vector<cell> old(cells);
        old.swap(cells_);
        shift_ = 64;
        for (size_t c = cells; c > 1; c /= 2)
            --shift_;
        size_ = 0;
        for (const cell &c : old)
            if (c.pid != 0)
                set(c.pid, c.index);
    }

    std::vector<cell> cells_;  // a power of two of them
    unsigned shift_ = 64;      // 64 - log2(cells_.size())
    size_t size_ = 0;
};

}  // namespace fcgipm
