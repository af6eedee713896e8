// The finetuning core as a user runs it: exact resumption after SIGKILL, a non-finite loss that stops the run
// without overwriting anything, clear errors for models and configs that cannot work, masking as the official
// collate makes it, and an exported teacher that torch_encoder's loader takes as it is.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <toml++/toml.h>

#include "histoflow/torch_encoders/vit.hpp"
#include "histoflow/torch_encoders/weights.hpp"
#include "support/fresh_folder.hpp"
#include "teacher_export.hpp"

extern char** environ;

using namespace histoflow;
using namespace histoflow::finetune;
using histoflow::testing::fresh_folder;

namespace {

// A ViT-S/14 at small crops: seconds per step, every piece of the recipe on (drop path, centring with its
// deferred update, iBOT, KoLeo, the last-layer freeze ending inside the run).
const char* kSmallRun = R"([model]
backbone = "dinov2_vits14"
synthetic_weights = true
drop_path_rate = 0.4
[crops]
global_size = 56
local_size = 28
local_number = 2
[dino]
head_n_prototypes = 256
head_hidden_dim = 128
head_bottleneck_dim = 32
[train]
batch_size = 4
centering = "centering"
epoch_length = 2
[optim]
epochs = 5
warmup_epochs = 1
base_lr = 0.01
[compute]
threads = 1
)";

std::filesystem::path write_config(const std::filesystem::path& folder, const std::string& text) {
  const auto file = folder / "finetune.toml";
  std::ofstream(file) << text;
  return file;
}

// `extra_environment`: "NAME=value" entries added to this process's environment (a data-parallel rank's).
pid_t spawn_training(const std::filesystem::path& config, const std::filesystem::path& out, int iterations, bool resume,
                     std::vector<std::string> extra_environment = {}) {
  std::vector<std::string> args{std::string(HISTOFLOW_BIN_DIR) + "/histoflow-ssl-train", config.string(), "--out", out.string(),
                                "--iterations", std::to_string(iterations), "--checkpoint-every", "1"};
  if (resume) args.push_back("--resume");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e) envp.push_back(*e);
  for (auto& e : extra_environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data()) == 0);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

std::vector<nlohmann::json> losses(const std::filesystem::path& out) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(out / "losses.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    j.erase("seconds");  // wall times are the one thing that may differ
    j.erase("data_seconds");
    lines.push_back(j);
  }
  return lines;
}

std::map<std::string, torch::Tensor> teacher_of(const std::filesystem::path& checkpoint) {
  std::map<std::string, torch::Tensor> teacher;
  for (auto& [key, t] : torch_encoders::read_weights(checkpoint).tensors)
    if (key.rfind("teacher.", 0) == 0) teacher[key] = t;
  return teacher;
}

std::int64_t iteration_of(const std::filesystem::path& checkpoint) {
  return nlohmann::json::parse(torch_encoders::read_weights(checkpoint).metadata.at("state")).at("iteration").get<std::int64_t>();
}

SslConfig tiny_config() {
  SslConfig c = parse_ssl_config(toml::parse(kSmallRun), "test");
  return c;
}

std::unique_ptr<torch_encoders::Backbone> tiny_vit() {
  torch_encoders::VitConfig c;
  c.img_size = 56, c.dim = 32, c.depth = 2, c.heads = 2;
  auto vit = torch_encoders::make_vit(c);
  torch_encoders::deterministic_init(vit->module());
  return vit;
}

}  // namespace

TEST_CASE("a run killed with SIGKILL resumes from its checkpoint and ends exactly as a run that was never stopped", "[finetune][resume][slow]") {
  const auto folder = fresh_folder("resume");
  const auto config = write_config(folder, kSmallRun);
  constexpr int kIterations = 8;

  const auto straight = folder / "straight";
  REQUIRE(WEXITSTATUS(wait_for(spawn_training(config, straight, kIterations, false))) == 0);

  const auto killed = folder / "killed";
  const pid_t pid = spawn_training(config, killed, kIterations, false);
  // Wait until half the run is checkpointed, then kill it without warning.
  for (int i = 0; i < 6000 && losses(killed).size() < kIterations / 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGKILL);
  const int status = wait_for(pid);
  REQUIRE(WIFSIGNALED(status));
  const auto at_kill = iteration_of(killed / "checkpoint.safetensors");
  INFO("killed after the checkpoint of iteration " << at_kill);
  REQUIRE(at_kill >= kIterations / 2);
  REQUIRE(at_kill < kIterations);  // the kill landed mid-run

  REQUIRE(WEXITSTATUS(wait_for(spawn_training(config, killed, kIterations, true))) == 0);
  CHECK(iteration_of(killed / "checkpoint.safetensors") == kIterations);
  const auto expected = teacher_of(straight / "checkpoint.safetensors"), resumed = teacher_of(killed / "checkpoint.safetensors");
  REQUIRE(expected.size() == resumed.size());
  for (const auto& [key, t] : expected) {
    INFO(key);
    CHECK(torch::equal(t, resumed.at(key)));  // bitwise
  }
  const auto curve = losses(straight), resumed_curve = losses(killed);
  REQUIRE(curve.size() == kIterations);
  CHECK(curve == resumed_curve);
  std::filesystem::remove_all(folder);
}

TEST_CASE("two processes over Gloo, each with half of every batch, train the teacher one process trains with the whole", "[finetune][data_parallel][slow]") {
  // Drop path and KoLeo off: their draws and nearest neighbours are per process in the official recipe too, so only
  // they may differ; the masks are drawn for the global batch on every process. Both centrings, iBOT on.
  for (const std::string centering : {"centering", "sinkhorn_knopp"}) {
    INFO(centering);
    const auto folder = fresh_folder("data-parallel-" + centering);
    std::string text = kSmallRun;
    const auto set = [&](const std::string& from, const std::string& to) { text.replace(text.find(from), from.size(), to); };
    set("drop_path_rate = 0.4", "drop_path_rate = 0.0");
    set("centering = \"centering\"", "centering = \"" + centering + "\"");
    set("head_bottleneck_dim = 32", "head_bottleneck_dim = 32\nkoleo_loss_weight = 0.0");
    text += "[teacher]\nmomentum_teacher = 0.5\nfinal_momentum_teacher = 0.5\n";  // a teacher that follows its student closely
    const auto config = write_config(folder, text);
    constexpr int kIterations = 3;
    REQUIRE(WEXITSTATUS(wait_for(spawn_training(config, folder / "one", kIterations, false))) == 0);
    REQUIRE(WEXITSTATUS(wait_for(spawn_training(config, folder / "early", 1, false))) == 0);
    std::vector<pid_t> ranks;
    for (int rank = 0; rank < 2; ++rank)
      ranks.push_back(spawn_training(config, folder / "two", kIterations, false,
                                     {"HISTOFLOW_RANK=" + std::to_string(rank), "HISTOFLOW_WORLD_SIZE=2",
                                      "HISTOFLOW_RENDEZVOUS=file:" + (folder / "rendezvous").string()}));
    for (const pid_t pid : ranks) REQUIRE(WEXITSTATUS(wait_for(pid)) == 0);
    // Student and teacher, every parameter: the same step was taken on both sides.
    const auto one = torch_encoders::read_weights(folder / "one" / "checkpoint.safetensors").tensors;
    const auto two = torch_encoders::read_weights(folder / "two" / "checkpoint.safetensors").tensors;
    const auto early = torch_encoders::read_weights(folder / "early" / "checkpoint.safetensors").tensors;
    double worst = 0, worst_student = 0, trained = 0;
    std::string worst_key;
    std::size_t compared = 0;
    for (const auto& [key, t] : one) {
      const double difference = key.rfind("teacher.", 0) == 0 || key.rfind("student.", 0) == 0 ? (t - two.at(key)).abs().max().item<double>() : 0;
      if (key.rfind("student.", 0) == 0) {
        worst_student = std::max(worst_student, difference);
      }
      // Over its last two steps the teacher moved by far more than the tolerance: the comparison can tell.
      if (key.rfind("teacher.", 0) == 0) trained = std::max(trained, (t - early.at(key)).abs().max().item<double>());
      if (key.rfind("teacher.", 0) != 0) continue;
      ++compared;
      if (difference > worst) worst = difference, worst_key = key;
    }
    INFO("largest teacher difference " << worst << " (" << worst_key << ") over " << compared << " tensors; students differ by up to "
         << worst_student << "; the teacher moved up to " << trained);
    CHECK(compared > 100);
    CHECK(worst <= 1e-5);
    // What is left is summation order: Adam's first steps move each weight by about +-lr whatever its gradient's size,
    // so a gradient that is zero up to rounding may take either sign. The teacher moved 50 times the tolerance.
    CHECK(trained > 5e-4);
    std::filesystem::remove_all(folder);
  }
}

TEST_CASE("a non-finite loss stops training before the step, naming the iteration and the last good checkpoint", "[finetune]") {
  const auto folder = fresh_folder("nan");
  auto config = tiny_config();
  config.drop_path_rate = 0;
  SslTrainer trainer(config, std::make_unique<SyntheticCropSource>(config, 1), std::make_unique<SslModel>(config, tiny_vit(), tiny_vit()));
  trainer.step();
  const auto checkpoint = folder / "checkpoint.safetensors";
  trainer.save_checkpoint(checkpoint);
  const auto bytes_before = std::filesystem::file_size(checkpoint);
  const auto teacher_before = trainer.model().teacher().named_parameters()[0].second.clone();
  {
    torch::NoGradGuard no_grad;
    trainer.model().student().named_parameters()[0].second.fill_(std::numeric_limits<float>::quiet_NaN());
  }
  try {
    trainer.step();
    FAIL("a NaN loss went through");
  } catch (const NonFiniteLoss& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("not finite at iteration 1"));
    CHECK_THAT(what, Catch::Contains(checkpoint.string()));
  }
  CHECK(trainer.iteration() == 1);
  CHECK(torch::equal(trainer.model().teacher().named_parameters()[0].second, teacher_before));  // no EMA of NaNs
  CHECK(std::filesystem::file_size(checkpoint) == bytes_before);
  std::filesystem::remove_all(folder);
}

TEST_CASE("models and configs that cannot be finetuned are refused with the reason", "[finetune]") {
  auto config = tiny_config();
  SECTION("a backbone without CLS token and patch grid") {
    config.backbone = "resnet50_trunc";
    CHECK_THROWS_WITH(SslModel(config), Catch::Contains("backbone 'resnet50_trunc' has no CLS token and patch grid"));
  }
  SECTION("an unknown key, with its place in the file") {
    const auto text = std::string(kSmallRun) + "lr_typo = 1\n";
    CHECK_THROWS_WITH(parse_ssl_config(toml::parse(text), "run.toml"), Catch::Contains("run.toml:23:1: unknown key 'lr_typo' in [compute]"));
  }
  SECTION("a wrong type") {
    CHECK_THROWS_WITH(parse_ssl_config(toml::parse("[train]\nbatch_size = \"four\"\n[model]\nsynthetic_weights = true\n"), "run.toml"),
                      Catch::Contains("run.toml:2:14: [train] batch_size expects an integer"));
  }
  SECTION("crops that do not fit the patch grid") {
    config.global_size = 50;
    CHECK_THROWS_WITH(SslModel(config), Catch::Contains("must be multiples of the patch size 14"));
  }
  SECTION("fp16 on the CPU") {
    config.precision = "fp16";
    CHECK_THROWS_WITH(validate_ssl_config(config), Catch::Contains("fp16 training needs a GPU"));
  }
}

TEST_CASE("an exported teacher loads into torch_encoder's backbone as it is, and its official layout restarts a run", "[finetune]") {
  const auto folder = fresh_folder("export");
  auto config = tiny_config();
  config.drop_path_rate = 0;
  SslTrainer trainer(config, std::make_unique<SyntheticCropSource>(config, 1));
  trainer.step();
  const auto exported = export_teacher(trainer, folder, "synthetic");
  const auto card = nlohmann::json::parse(std::ifstream(exported.card));
  CHECK(card.at("iterations") == 1);
  CHECK(card.at("position_grid") == 4);

  // The encoder's path: a fresh registry backbone (37x37 grid) adopts the saved 4x4 grid and gives the teacher's output.
  auto encoder = torch_encoders::find_backbone("dinov2_vits14").create();
  torch_encoders::load_into(*encoder, torch_encoders::read_weights(exported.backbone), exported.backbone);
  encoder->module().eval();
  torch::NoGradGuard no_grad;
  const auto images = torch::randn({2, 3, 56, 56});
  const auto ours = encoder->forward(images).cls;
  const auto teacher = trainer.model().teacher().vit->forward_tokens(images, {}, {}, nullptr, torch::kFloat).cls;
  CHECK(((ours - teacher).norm() / teacher.norm()).item<double>() < 1e-6);

  // The official layout {"teacher": {"backbone.…", "dino_head.…"}} as a starting point: heads are taken too, and a
  // head of another size is refused naming the tensor.
  auto restart = config;
  restart.synthetic_weights = false;
  restart.weights = exported.checkpoint.string();
  SslModel resumed(restart);
  CHECK(torch::equal(resumed.student().dino_head->named_parameters()["last_layer.weight_v"],
                     trainer.model().teacher().dino_head->named_parameters()["last_layer.weight_v"]));
  restart.dino_head.prototypes = 128;
  CHECK_THROWS_WITH(SslModel(restart), Catch::Contains("pth': dino_head.last_layer.weight_g has shape [256, 1] but the configured dino_head needs [128, 1]"));
  std::filesystem::remove_all(folder);
}

TEST_CASE("block masking follows the official collate: share of masked crops, ratio bands, seeded and resumable", "[finetune]") {
  BlockMasking masking(16, MaskingConfig{}, 7);
  const auto state = masking.state();
  const auto first = masking.next(16);
  CHECK(first.masks.sizes() == torch::IntArrayRef({16, 256}));
  const auto per_crop = first.masks.sum(1);
  CHECK((per_crop > 0).sum().item<std::int64_t>() == 8);  // int(16 * 0.5) crops masked
  CHECK(per_crop.max().item<std::int64_t>() <= static_cast<std::int64_t>(256 * 0.5));
  CHECK(first.masked == per_crop.sum().item<std::int64_t>());
  CHECK(first.weights.sum().item<double>() == Approx(8.0));  // each masked crop's weights sum to one
  masking.restore(state);
  CHECK(torch::equal(masking.next(16).masks, first.masks));
  CHECK(!torch::equal(masking.next(16).masks, first.masks));
}

TEST_CASE("bf16 training runs its products in bf16, teacher included, and stays near the fp32 step", "[finetune]") {
  auto config = tiny_config();
  config.drop_path_rate = 0;
  auto vit = tiny_vit();
  auto* trainable = vit->trainable_vit();
  const auto images = torch::randn({2, 3, 56, 56});
  CHECK(trainable->forward_tokens(images, {}, {}, nullptr, torch::kBFloat16).cls.scalar_type() == torch::kBFloat16);
  {
    torch::NoGradGuard no_grad;  // the teacher's call
    CHECK(trainable->forward_tokens(images, {}, {}, nullptr, torch::kBFloat16).cls.scalar_type() == torch::kBFloat16);
  }
  std::vector<double> totals;
  for (const std::string precision : {"fp32", "bf16"}) {
    config.precision = precision;
    SslTrainer trainer(config, std::make_unique<SyntheticCropSource>(config, 1), std::make_unique<SslModel>(config, tiny_vit(), tiny_vit()));
    totals.push_back(trainer.step().total);
  }
  INFO("fp32 " << totals[0] << ", bf16 " << totals[1]);
  CHECK(totals[1] != totals[0]);  // really computed in another precision
  CHECK(std::abs(totals[1] - totals[0]) < 2e-2 * std::abs(totals[0]));
}
