#pragma once
// A value computed once per key, however many threads ask for it at once: the first asker computes it (outside
// the lock, so different keys are computed in parallel), the others wait for that result. A computation that
// throws is remembered too: every asker of that key gets the same exception, and it is not retried.
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace histoflow::slides {

template <typename Value>
class OncePerKey {
 public:
  using Shared = std::shared_ptr<const Value>;

  template <typename Compute>
  Shared get(const std::string& key, Compute&& compute) {
    std::shared_future<Shared> result;
    std::optional<std::promise<Shared>> mine;
    {
      std::lock_guard lock(mutex_);
      const auto found = values_.find(key);
      if (found != values_.end()) {
        result = found->second;
      } else {
        mine.emplace();
        result = mine->get_future().share();
        values_.emplace(key, result);
      }
    }
    if (mine) {
      try {
        mine->set_value(std::make_shared<const Value>(compute()));
      } catch (...) {
        mine->set_exception(std::current_exception());
      }
    }
    return result.get();
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return values_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_future<Shared>> values_;
};

}  // namespace histoflow::slides
