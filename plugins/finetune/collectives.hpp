#pragma once
// The processes of a data-parallel finetuning run (`srun -n W histoflow-ssl-train ...`) and the sums they make
// together: gradients, the Sinkhorn-Knopp column sums, the teacher centres and the masked-patch count, where
// facebookresearch/dinov2 all-reduces them. One process: every sum is the process's own.
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace histoflow::finetune {

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  // Replaces `tensor` (contiguous, on the run's device) with its sum over every process. All processes call it
  // with tensors of the same shape, in the same order.
  virtual void sum(torch::Tensor& tensor) = 0;
};

// One process alone: rank 0 of 1, sums are the identity.
std::unique_ptr<Collectives> single_process();

// Where the processes of a run meet: rank and count, and a store that every one of them reaches. `store` is
// "file:PATH" (a file on a shared file system; it must not exist yet) or "tcp:HOST:PORT" (rank 0 listens).
struct Rendezvous {
  int rank = 0;
  int world = 1;
  std::string store;
};

using Environment = std::function<std::optional<std::string>(const std::string&)>;

// From the environment: SLURM_PROCID and SLURM_STEP_NUM_TASKS in a step of srun (HISTOFLOW_RANK and HISTOFLOW_WORLD_SIZE
// elsewhere), HISTOFLOW_RENDEZVOUS for the store, else `default_store`. None for one process. Throws
// std::invalid_argument for values that do not fit together, or when no store is named.
std::optional<Rendezvous> rendezvous_from(const Environment& environment, const std::string& default_store);

// The store a Slurm job step's processes share without being told: "file:FOLDER/rendezvous-<job>.<step>" (fresh for
// every step, so a crashed step's file is never met again). Empty outside Slurm: HISTOFLOW_RENDEZVOUS must say.
std::string slurm_rendezvous_store(const Environment& environment, const std::filesystem::path& folder);

// This process's environment, as `Environment`.
std::optional<std::string> process_environment(const std::string& name);

// Joins the run's process group (c10d's ProcessGroupGloo). Blocks until every process has joined; throws with the
// store when it cannot, or when this build has no Gloo. A sum waits up to HISTOFLOW_COLLECTIVE_TIMEOUT seconds
// (default 24 h: the other ranks wait while rank 0 evaluates).
std::unique_ptr<Collectives> join_process_group(const Rendezvous& rendezvous);

}  // namespace histoflow::finetune
