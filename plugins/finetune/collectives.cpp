#include "collectives.hpp"

#include <chrono>
#include <cstdlib>
#include <stdexcept>

#ifdef HISTOFLOW_HAVE_GLOO
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace histoflow::finetune {
namespace {

class SingleProcess final : public Collectives {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  void sum(torch::Tensor&) override {}
};

int whole_number(const std::string& name, const std::string& text) {
  try {
    std::size_t used = 0;
    const int value = std::stoi(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(name + "='" + text + "' is not a whole number");
}

#ifdef HISTOFLOW_HAVE_GLOO
class GlooGroup final : public Collectives {
 public:
  GlooGroup(const Rendezvous& r) : rank_(r.rank), world_(r.world) {
    c10::intrusive_ptr<c10d::Store> store;
    if (r.store.rfind("file:", 0) == 0) {
      store = c10::make_intrusive<c10d::FileStore>(r.store.substr(5), r.world);
    } else if (r.store.rfind("tcp:", 0) == 0) {
      const std::string address = r.store.substr(4);
      const auto colon = address.rfind(':');
      if (colon == std::string::npos) throw std::invalid_argument("rendezvous '" + r.store + "': expected tcp:HOST:PORT");
      c10d::TCPStoreOptions options;
      options.port = static_cast<std::uint16_t>(whole_number("port", address.substr(colon + 1)));
      options.isServer = r.rank == 0;
      options.numWorkers = r.world;
      store = c10::make_intrusive<c10d::TCPStore>(address.substr(0, colon), options);
    } else {
      throw std::invalid_argument("rendezvous '" + r.store + "': expected file:PATH or tcp:HOST:PORT");
    }
    // Rank 0 evaluates the teacher while the others wait in their next sum: c10d's 30-minute default would end a long
    // evaluation's run. HISTOFLOW_COLLECTIVE_TIMEOUT (seconds) sets it; default 24 h.
    const auto timeout = process_environment("HISTOFLOW_COLLECTIVE_TIMEOUT");
    auto options = c10d::ProcessGroupGloo::Options::create(
        std::chrono::milliseconds(1000LL * (timeout ? whole_number("HISTOFLOW_COLLECTIVE_TIMEOUT", *timeout) : 24 * 3600)));
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store, r.rank, r.world, options);
  }
  int rank() const override { return rank_; }
  int world() const override { return world_; }
  void sum(torch::Tensor& tensor) override {
    std::vector<torch::Tensor> tensors{tensor};
    group_->allreduce(tensors)->wait();
  }

 private:
  int rank_, world_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};
#endif

}  // namespace

std::unique_ptr<Collectives> single_process() { return std::make_unique<SingleProcess>(); }

std::optional<std::string> process_environment(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  return value ? std::optional<std::string>(value) : std::nullopt;
}

std::string slurm_rendezvous_store(const Environment& environment, const std::filesystem::path& folder) {
  const auto job = environment("SLURM_JOB_ID");
  if (!job) return {};
  return "file:" + (folder / ("rendezvous-" + *job + "." + environment("SLURM_STEP_ID").value_or("0"))).string();
}

std::optional<Rendezvous> rendezvous_from(const Environment& environment, const std::string& default_store) {
  // A step of srun: SLURM_STEP_NUM_TASKS. (A batch script sees SLURM_PROCID=0 and SLURM_NTASKS of the whole job, but is
  // one process: taking SLURM_NTASKS there would wait for ranks that never come.)
  // The explicit variables win (a test run under srun sets its own).
  const bool slurm = !environment("HISTOFLOW_RANK") && !environment("HISTOFLOW_WORLD_SIZE") && environment("SLURM_PROCID").has_value() &&
                     environment("SLURM_STEP_NUM_TASKS").has_value();
  const std::string rank_name = slurm ? "SLURM_PROCID" : "HISTOFLOW_RANK";
  const std::string world_name = slurm ? "SLURM_STEP_NUM_TASKS" : "HISTOFLOW_WORLD_SIZE";
  const auto rank_text = environment(rank_name), world_text = environment(world_name);
  if (!rank_text && !world_text) return std::nullopt;
  if (!rank_text || !world_text) throw std::invalid_argument(rank_name + " and " + world_name + " go together");
  Rendezvous r{whole_number(rank_name, *rank_text), whole_number(world_name, *world_text), default_store};
  if (r.world < 1 || r.rank < 0 || r.rank >= r.world)
    throw std::invalid_argument(rank_name + "=" + *rank_text + " is not a rank of " + world_name + "=" + *world_text);
  if (r.world == 1) return std::nullopt;
  if (const auto store = environment("HISTOFLOW_RENDEZVOUS")) r.store = *store;
  if (r.store.empty())
    throw std::invalid_argument("rank " + std::to_string(r.rank) + " of " + std::to_string(r.world) +
                                ": HISTOFLOW_RENDEZVOUS must name where the processes meet (file:PATH on a shared file system, "
                                "or tcp:HOST:PORT of rank 0)");
  return r;
}

std::unique_ptr<Collectives> join_process_group(const Rendezvous& rendezvous) {
#ifdef HISTOFLOW_HAVE_GLOO
  try {
    return std::make_unique<GlooGroup>(rendezvous);
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(rendezvous.rank) + " of " + std::to_string(rendezvous.world) +
                             " cannot join the process group at '" + rendezvous.store + "': " + e.what());
  }
#else
  throw std::runtime_error("this build has no Gloo (c10d's ProcessGroupGloo, headers from libgloo-dev): a data-parallel run of " +
                           std::to_string(rendezvous.world) + " processes cannot start");
#endif
}

}  // namespace histoflow::finetune
