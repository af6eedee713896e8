#pragma once
// Back-pressure, implemented once for every graph: a source may admit an item only when it holds a
// slot of the gate; the item's ticket travels with every envelope derived from it and returns the slot
// when the last of them has been processed.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <semaphore>
#include <vector>

#include "histoflow/item_lock.hpp"

namespace histoflow::detail {

class Gate {
 public:
  explicit Gate(std::int64_t capacity) : slots_(static_cast<std::ptrdiff_t>(capacity)) {}

  // Blocks until a slot is free; returns false when `stop` became true meanwhile.
  bool acquire(const std::atomic<bool>& stop) {
    waiting_.fetch_add(1);
    while (!slots_.try_acquire_for(std::chrono::milliseconds(5))) {
      if (stop.load()) {
        waiting_.fetch_sub(1);
        return false;
      }
    }
    waiting_.fetch_sub(1);
    const std::int64_t now = in_flight_.fetch_add(1) + 1;
    std::int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    return true;
  }
  void release() {
    in_flight_.fetch_sub(1);
    retired_.fetch_add(1);
    slots_.release();
  }
  std::int64_t in_flight() const { return in_flight_.load(); }
  std::int64_t peak() const { return peak_.load(); }
  std::uint64_t retired() const { return retired_.load(); }
  int waiting() const { return waiting_.load(); }

 private:
  std::counting_semaphore<1'000'000> slots_;
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<std::int64_t> peak_{0};
  std::atomic<std::uint64_t> retired_{0};
  std::atomic<int> waiting_{0};
};

struct Ticket {
  virtual ~Ticket() = default;
};

// One admitted source item.
class ItemTicket final : public Ticket {
 public:
  explicit ItemTicket(Gate& gate) : gate_(gate) {}
  ~ItemTicket() override { gate_.release(); }

 private:
  Gate& gate_;
};

// A batch holds the tickets of all its members.
class GroupTicket final : public Ticket {
 public:
  explicit GroupTicket(std::vector<std::shared_ptr<Ticket>> members) : members_(std::move(members)) {}

 private:
  std::vector<std::shared_ptr<Ticket>> members_;
};

// A source item that holds its item lock (ItemLock) until every packet of it has retired.
class LockedTicket final : public Ticket {
 public:
  LockedTicket(std::shared_ptr<Ticket> item, ItemLock lock) : lock_(std::move(lock)), item_(std::move(item)) {}

 private:
  ItemLock lock_;  // destroyed last: released once the item has retired
  std::shared_ptr<Ticket> item_;
};

}  // namespace histoflow::detail
