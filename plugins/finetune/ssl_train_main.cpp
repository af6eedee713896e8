// histoflow-ssl-train: runs the DINOv2 finetuning core on a config, resumably.
//   histoflow-ssl-train CONFIG.toml --out DIR --iterations N [--checkpoint-every K] [--resume] [--export]
//                       [--threads T] [--warmup W]
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

#include "histoflow/atomic_file.hpp"
#include "histoflow/cpu_kernels.hpp"
#include "ssl_trainer.hpp"
#include "teacher_export.hpp"

using namespace histoflow::finetune;

namespace {

int usage(const std::string& why) {
  std::cerr << "histoflow-ssl-train: " << why << "\nusage: histoflow-ssl-train CONFIG.toml --out DIR --iterations N [--checkpoint-every K] [--resume] [--export] [--threads T] [--warmup W]\n";
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
    SslTrainer trainer(config, std::make_unique<SyntheticCropSource>(config, config.seed));
    if (resume && std::filesystem::exists(checkpoint)) {
      trainer.resume(checkpoint);
      std::cerr << "histoflow-ssl-train: resumed from '" << checkpoint.string() << "' at iteration " << trainer.iteration() << "\n";
    }
    std::vector<double> timed;
    while (trainer.iteration() < iterations) {
      const auto report = trainer.step();
      std::cout << report_json(report).dump() << std::endl;
      if (report.iteration >= warmup) timed.push_back(report.seconds);
      if ((every > 0 && trainer.iteration() % every == 0) || trainer.iteration() == iterations) {
        trainer.save_checkpoint(checkpoint);
        write_losses(out / "losses.jsonl", trainer.history());
      }
    }
    if (export_teacher_files) export_teacher(trainer, out / "export", "synthetic crops (histoflow-init-v1), seed " + std::to_string(config.seed));
    rusage usage_stats{};
    getrusage(RUSAGE_SELF, &usage_stats);
    std::sort(timed.begin(), timed.end());
    const char* aten_capability = std::getenv("ATEN_CPU_CAPABILITY");  // as use_widest_cpu_kernels left it
    nlohmann::json summary{{"impl", "histoflow"}, {"precision", config.precision}, {"threads", torch::get_num_threads()},
                           {"aten_cpu_capability", aten_capability ? aten_capability : "default"},
                           {"batch", config.batch_size}, {"steps", timed.size()}, {"peak_rss_mb", usage_stats.ru_maxrss / 1024.0}};
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
