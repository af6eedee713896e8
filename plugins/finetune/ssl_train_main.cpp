// histoflow-ssl-train: runs the DINOv2 finetuning core on a config, resumably.
//   histoflow-ssl-train CONFIG.toml --out DIR --iterations N [--checkpoint-every K] [--resume] [--export]
//                       [--threads T] [--warmup W] [--rendezvous file:PATH|tcp:HOST:PORT]
// Data-parallel over W processes (docs/finetune.md): `srun -n W histoflow-ssl-train ...` (ranks from SLURM_PROCID
// and SLURM_NTASKS; HISTOFLOW_RANK and HISTOFLOW_WORLD_SIZE elsewhere). They meet at --rendezvous (or
// HISTOFLOW_RENDEZVOUS; under Slurm by default a file in DIR named after the job step); each takes batch_size / W images of every
// batch, and rank 0 alone prints, checkpoints and exports.
// Crops come from the synthetic source (deterministic per batch); the finetuning graph stage brings real tiles.
// Each step prints one JSON line; DIR/checkpoint.safetensors is replaced atomically every K steps and at the end,
// together with DIR/losses.jsonl (the whole loss curve). --warmup W: the final summary's timing leaves out the
// first W steps (benchmarks). Exit status: 0 done, 2 bad arguments or config, 3 non-finite loss, 1 other errors.
#include <malloc.h>
#include <climits>
#include <sys/resource.h>

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "collectives.hpp"
#include "histoflow/atomic_file.hpp"
#include "histoflow/cpu_kernels.hpp"
#include "ssl_trainer.hpp"
#include "teacher_export.hpp"

using namespace histoflow::finetune;

namespace {

int usage(const std::string& why) {
  std::cerr << "histoflow-ssl-train: " << why << "\nusage: histoflow-ssl-train CONFIG.toml --out DIR --iterations N [--checkpoint-every K] [--resume] [--export] [--threads T] [--warmup W] [--rendezvous STORE]\n";
  return 2;
}

void write_losses(const std::filesystem::path& file, const std::vector<StepReport>& history) {
  std::string text;
  for (const auto& r : history) text += report_json(r).dump() + "\n";
  histoflow::write_file_atomically(file, text);
}

}  // namespace

int main(int argc, char** argv) {
  histoflow::use_widest_cpu_kernels();
  // A step allocates and frees tensors of up to hundreds of MB ([rows, 65,536] head outputs and gradients). glibc
  // serves such blocks with mmap and returns them on free, so every step faults its memory in again (half the
  // step in system time on this machine). Keeping freed memory in the heap makes later steps reuse it.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
  std::vector<std::string> args(argv + 1, argv + argc);
  std::filesystem::path config_file, out;
  std::int64_t iterations = -1, every = 0, warmup = 0;
  int threads = 0;
  bool resume = false, export_teacher_files = false;
  std::string rendezvous_store;
  try {
    for (std::size_t i = 0; i < args.size(); ++i) {
      const auto value = [&]() -> std::string {
        if (i + 1 >= args.size()) throw std::invalid_argument(args[i] + " needs a value");
        return args[++i];
      };
      if (args[i] == "--out") out = value();
      else if (args[i] == "--iterations") iterations = std::stoll(value());
      else if (args[i] == "--checkpoint-every") every = std::stoll(value());
      else if (args[i] == "--threads") threads = std::stoi(value());
      else if (args[i] == "--warmup") warmup = std::stoll(value());
      else if (args[i] == "--resume") resume = true;
      else if (args[i] == "--export") export_teacher_files = true;
      else if (args[i] == "--rendezvous") rendezvous_store = value();
      else if (args[i].rfind("--", 0) == 0) throw std::invalid_argument("unknown option " + args[i]);
      else if (config_file.empty()) config_file = args[i];
      else throw std::invalid_argument("one config file only");
    }
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  if (config_file.empty() || out.empty() || iterations < 0) return usage("CONFIG, --out and --iterations are required");

  SslConfig config;
  try {
    config = read_ssl_config(config_file);
    if (threads > 0) config.threads = threads;
  } catch (const std::exception& e) {
    std::cerr << "histoflow-ssl-train: " << e.what() << "\n";
    return 2;
  }
  try {
    std::filesystem::create_directories(out);
    const auto checkpoint = out / "checkpoint.safetensors";
    const std::string store = rendezvous_store.empty() ? slurm_rendezvous_store(process_environment, out) : rendezvous_store;
    auto rendezvous = rendezvous_from(process_environment, store);
    if (rendezvous && !rendezvous_store.empty()) rendezvous->store = rendezvous_store;
    const auto collectives = rendezvous ? join_process_group(*rendezvous) : single_process();
    const bool lead = collectives->rank() == 0;  // prints, checkpoints and exports; every rank holds the same state
    SslTrainer trainer(config, std::make_unique<SyntheticCropSource>(config, config.seed), nullptr, collectives.get());
    if (resume && std::filesystem::exists(checkpoint)) {
      trainer.resume(checkpoint);
      std::cerr << "histoflow-ssl-train: resumed from '" << checkpoint.string() << "' at iteration " << trainer.iteration() << "\n";
    }
    std::vector<double> timed;
    while (trainer.iteration() < iterations) {
      const auto report = trainer.step();
      if (lead) std::cout << report_json(report).dump() << std::endl;
      if (report.iteration >= warmup) timed.push_back(report.seconds);
      if (lead && ((every > 0 && trainer.iteration() % every == 0) || trainer.iteration() == iterations)) {
        trainer.save_checkpoint(checkpoint);
        write_losses(out / "losses.jsonl", trainer.history());
      }
    }
    if (lead && export_teacher_files) export_teacher(trainer, out / "export", "synthetic crops (histoflow-init-v1), seed " + std::to_string(config.seed));
    rusage usage_stats{};
    getrusage(RUSAGE_SELF, &usage_stats);
    std::sort(timed.begin(), timed.end());
    const char* aten_capability = std::getenv("ATEN_CPU_CAPABILITY");  // as use_widest_cpu_kernels left it
    nlohmann::json summary{{"impl", "histoflow"}, {"precision", config.precision}, {"threads", torch::get_num_threads()},
                           {"aten_cpu_capability", aten_capability ? aten_capability : "default"},
                           {"batch", config.batch_size}, {"processes", collectives->world()}, {"rank", collectives->rank()},
                           {"steps", timed.size()}, {"peak_rss_mb", usage_stats.ru_maxrss / 1024.0}};
    if (!timed.empty()) {
      const double median = timed[timed.size() / 2];
      summary["step_seconds_median"] = median;
      summary["step_seconds_all"] = timed;
      summary["images_per_second"] = config.batch_size / median;
    }
    std::cerr << summary.dump() << "\n";
    return 0;
  } catch (const NonFiniteLoss& e) {
    std::cerr << "histoflow-ssl-train: " << e.what() << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "histoflow-ssl-train: " << e.what() << "\n";
    return 1;
  }
}
