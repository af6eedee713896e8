#include "histoflow/errors.hpp"

namespace histoflow {

void ErrorLog::add(ErrorRecord record) {
  std::lock_guard lock(mutex_);
  records_.push_back(std::move(record));
}

std::vector<ErrorRecord> ErrorLog::snapshot() const {
  std::lock_guard lock(mutex_);
  return records_;
}

std::size_t ErrorLog::size() const {
  std::lock_guard lock(mutex_);
  return records_.size();
}

void ErrorLog::warn(ErrorRecord record) {
  std::lock_guard lock(mutex_);
  warnings_.push_back(std::move(record));
}

std::vector<ErrorRecord> ErrorLog::warnings() const {
  std::lock_guard lock(mutex_);
  return warnings_;
}

}  // namespace histoflow
