// Weights as published: nested PyTorch checkpoints with prefixes, safetensors, and every way they go wrong.
#include <catch2/catch.hpp>
#include <fstream>

#include "histoflow/harness.hpp"
#include "histoflow/sha256.hpp"
#include "histoflow/torch_encoders/backbone.hpp"
#include "histoflow/torch_encoders/safetensors.hpp"
#include "histoflow/torch_encoders/vit.hpp"
#include "histoflow/torch_encoders/weights.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;
using namespace histoflow::torch_encoders;
using histoflow::testing::fresh_folder;

namespace {

const std::filesystem::path kFixtures = std::filesystem::path(HISTOFLOW_SOURCE_DIR) / "tests" / "fixtures" / "encoders";

std::unique_ptr<Backbone> tiny() {
  VitConfig c;
  c.dim = 64, c.depth = 2, c.heads = 2, c.swiglu = true;
  return make_vit(c);
}

bool same_parameters(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.named_parameters(true), pb = b.named_parameters(true);
  for (const auto& p : pa)
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  return true;
}

std::string read(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

void write(const std::filesystem::path& file, const std::string& bytes) { std::ofstream(file, std::ios::binary) << bytes; }

}  // namespace

TEST_CASE("a DINOv2 training checkpoint loads as published: unwrapped, teacher chosen, head ignored", "[torch][weights]") {
  const auto file = kFixtures / "tiny_swiglu_teacher.pth";
  const LoadedWeights w = read_weights(file);
  CHECK(w.format == "pytorch");
  CHECK(w.nesting == "model");
  CHECK(w.sha256 == sha256_file(file));
  auto loaded = tiny();
  CHECK(load_into(*loaded, w, file) == "teacher.backbone.");
  auto reference = tiny();
  deterministic_init(reference->module());
  CHECK(same_parameters(loaded->module(), reference->module()));
}

TEST_CASE("safetensors written and read back give the same model; the file hash is its identity", "[torch][weights]") {
  auto reference = tiny();
  deterministic_init(reference->module());
  std::map<std::string, SafetensorsBlob> blobs;
  for (const auto& p : reference->module().named_parameters(true)) {
    const auto t = p.value().contiguous();
    blobs[p.key()] = {"F32", t.sizes().vec(), std::string(static_cast<const char*>(t.data_ptr()), t.nbytes())};
  }
  const auto dir = fresh_folder("safetensors");
  write_safetensors(dir / "tiny.safetensors", blobs, {{"format", "pt"}});
  const LoadedWeights w = read_weights(dir / "tiny.safetensors");
  CHECK(w.format == "safetensors");
  auto loaded = tiny();
  CHECK(load_into(*loaded, w, dir / "tiny.safetensors").empty());
  CHECK(same_parameters(loaded->module(), reference->module()));
}

TEST_CASE("a safetensors file whose header length ends in the byte 0x80 is not taken for a legacy pickle", "[torch][weights]") {
  // 1 in 256 headers: a finetuning checkpoint of 112,992 header bytes (0x1b980) was refused on resume.
  const auto dir = fresh_folder("safetensors-0x80");
  const std::map<std::string, SafetensorsBlob> blobs{{"w", {"F32", {2}, std::string(8, '\0')}}};
  bool tried = false;
  for (std::size_t pad = 0; pad < 256 && !tried; ++pad) {
    write_safetensors(dir / "w.safetensors", blobs, {{"note", std::string(pad, 'x')}});
    const std::string bytes = read(dir / "w.safetensors");
    if (static_cast<unsigned char>(bytes[0]) != 0x80) continue;
    tried = true;
    const LoadedWeights w = read_weights(dir / "w.safetensors");
    CHECK(w.format == "safetensors");
    CHECK(w.tensors.count("w") == 1);
  }
  REQUIRE(tried);
  // A real legacy pickle still gets its own message.
  write(dir / "legacy.pth", std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14));
  CHECK_THROWS_WITH(read_weights(dir / "legacy.pth"), Catch::Contains("legacy (pre-1.6) PyTorch checkpoint"));
}

TEST_CASE("broken weight files fail clearly, naming the file", "[torch][weights][bad]") {
  const auto dir = fresh_folder("bad-weights");
  const std::string good = read(kFixtures / "dinov2_tiny_swiglu.safetensors");
  // Truncated: the header's ranges point past the end.
  write(dir / "truncated.safetensors", good.substr(0, good.size() / 2));
  CHECK_THROWS_WITH(read_weights(dir / "truncated.safetensors"),
                    Catch::Contains("truncated.safetensors") && Catch::Contains("outside"));
  // A header that claims more bytes than the file has.
  std::string lying = good;
  lying[6] = '\x7f';
  write(dir / "lying.safetensors", lying);
  CHECK_THROWS_WITH(read_weights(dir / "lying.safetensors"), Catch::Contains("lying.safetensors") && Catch::Contains("the header claims"));
  // A shape that disagrees with the byte range.
  write_safetensors(dir / "shape.safetensors", {{"w", {"F32", {3, 3}, std::string(32, '\0')}}}, {});
  CHECK_THROWS_WITH(read_weights(dir / "shape.safetensors"), Catch::Contains("tensor 'w'") && Catch::Contains("needs 36"));
  // A corrupt PyTorch checkpoint.
  const std::string pth = read(kFixtures / "tiny_swiglu_teacher.pth");
  write(dir / "corrupt.pth", pth.substr(0, pth.size() / 3));
  CHECK_THROWS_WITH(read_weights(dir / "corrupt.pth"), Catch::Contains("corrupt.pth"));
  // Not a weights file at all.
  write(dir / "notes.pth", "these are not weights");
  CHECK_THROWS_WITH(read_weights(dir / "notes.pth"), Catch::Contains("notes.pth"));
}

TEST_CASE("weights for another architecture list every missing and unexpected key at once", "[torch][weights][bad]") {
  const auto file = kFixtures / "tiny_swiglu_teacher.pth";
  const LoadedWeights w = read_weights(file);
  auto resnet = find_backbone("resnet50").create();
  try {
    load_into(*resnet, w, file);
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    const std::string text = e.what();
    CHECK_THAT(text, Catch::Contains("tiny_swiglu_teacher.pth") && Catch::Contains("missing:") && Catch::Contains("conv1.weight"));
  }
  // Same family, another size: every tensor has the wrong shape.
  auto vits = find_backbone("dinov2_vits14").create();
  CHECK_THROWS_WITH(load_into(*vits, w, file), Catch::Contains("with another shape") && Catch::Contains("cls_token") &&
                                                   Catch::Contains("missing") && Catch::Contains("blocks.11"));
}

TEST_CASE("encoder stage errors: unknown backbone, CUDA without a device, wrong tiles", "[torch][stage][bad]") {
  testing::shared_loader();
  CHECK_THROWS_WITH(StageHarness("use = \"torch_encoder\"\nbackbone = \"dinov2_vits15\"\nsynthetic_weights = true"),
                    Catch::Contains("did you mean 'dinov2_vits14'"));
  CHECK_THROWS_WITH(StageHarness("use = \"torch_encoder\"\nbackbone = \"resnet50\""), Catch::Contains("needs 'weights' or 'synthetic_weights = true'"));
  CHECK_THROWS_WITH(StageHarness("use = \"torch_encoder\"\nbackbone = \"resnet50\"\nsynthetic_weights = true\noutput = \"cls\""),
                    Catch::Contains("output 'cls' is not offered by backbone 'resnet50' (resnet)"));
  if (!torch::cuda::is_available())
    CHECK_THROWS_WITH(StageHarness("use = \"torch_encoder\"\nbackbone = \"resnet50\"\nsynthetic_weights = true\ndevice = \"cuda:0\""),
                      Catch::Contains("no CUDA device"));
  StageHarness encoder("use = \"torch_encoder\"\nbackbone = \"resnet50_trunc\"\nsynthetic_weights = true\nthreads = 2");
  Packet gray;
  gray.kind = "tile";
  gray.provenance.item_id = "slide-3";
  gray.tensor = histoflow::Tensor::zeros(DType::Float32, {224, 224, 3});
  CHECK_THROWS_WITH(encoder.push_batch({make_packet(std::move(gray))}), Catch::Contains("slide-3") && Catch::Contains("expected uint8"));
}

#include "histoflow/torch_encoders/convert.hpp"

TEST_CASE("the converter writes safetensors that load to the same tensors", "[torch][weights][convert]") {
  const auto dir = fresh_folder("convert");
  const auto source = kFixtures / "tiny_swiglu_teacher.pth";
  const auto report = convert_to_safetensors(source, dir / "out.safetensors");
  CHECK(report.nesting == "model");
  CHECK(report.source_sha256 == sha256_file(source));
  const LoadedWeights original = read_weights(source), converted = read_weights(dir / "out.safetensors");
  REQUIRE(converted.tensors.size() == original.tensors.size());
  for (const auto& [name, tensor] : original.tensors) CHECK(torch::equal(converted.tensors.at(name), tensor));
  // Reduced to a backbone, the converter checks strictly: these weights are not a ViT-S.
  CHECK_THROWS_WITH(convert_to_safetensors(source, dir / "vits.safetensors", "dinov2_vits14"), Catch::Contains("do not fit"));
  CHECK_FALSE(std::filesystem::exists(dir / "vits.safetensors"));
}

TEST_CASE("a TorchScript model runs through the encoder with declared size, normalisation and width", "[torch][torchscript]") {
  histoflow::testing::shared_loader();
  const auto f = read_weights(kFixtures / "torchscript_small.safetensors").tensors;
  const auto model = (kFixtures / "torchscript_small.pt").string();
  StageHarness encoder("use = \"torch_encoder\"\nbackbone = \"torchscript\"\nweights = \"" + model +
                       "\"\ninput_size = 64\nmean = [0.5, 0.5, 0.5]\nstd = [0.25, 0.25, 0.25]\noutput_size = 5\nthreads = 2");
  std::vector<PacketPtr> tiles;
  const auto input = f.at("input").contiguous();
  for (std::int64_t i = 0; i < 2; ++i) {
    Packet tile;
    tile.kind = "tile";
    tile.tensor = histoflow::Tensor::zeros(DType::UInt8, {64, 64, 3});
    std::memcpy(tile.tensor.raw_data(), input[i].data_ptr(), tile.tensor.nbytes());
    tiles.push_back(make_packet(std::move(tile)));
  }
  const auto out = encoder.push_batch(tiles);
  const auto ours = torch::from_blob(out[0]->tensor.raw_data(), {2, 5}, torch::kFloat32);
  const auto reference = f.at("features");
  CHECK(((ours - reference).norm() / reference.norm()).item<double>() < 1e-5);
  CHECK(*out[0]->attribute<std::string>("weights_sha256") == sha256_file(model));
  CHECK_THROWS_WITH(StageHarness("use = \"torch_encoder\"\nbackbone = \"torchscript\"\nsynthetic_weights = true"),
                    Catch::Contains("needs weights"));
  StageHarness wrong("use = \"torch_encoder\"\nbackbone = \"torchscript\"\nweights = \"" + model + "\"\ninput_size = 64\noutput_size = 7");
  CHECK_THROWS_AS(wrong.push_batch(tiles), FatalError);
}

TEST_CASE("a backbone added by a plugin is accepted, validated and described like a built-in one", "[torch][plugin]") {
  histoflow::testing::shared_loader();  // loads build/plugins, example_backbone among them
  REQUIRE(find_backbone("example_small_cnn").dim == 32);
  StageHarness encoder("use = \"torch_encoder\"\nbackbone = \"example_small_cnn\"\nsynthetic_weights = true\nthreads = 2");
  Packet tile;
  tile.kind = "tile";
  tile.tensor = histoflow::Tensor::zeros(DType::UInt8, {224, 224, 3});
  const auto out = encoder.push_batch({make_packet(std::move(tile))});
  CHECK(out[0]->tensor.shape() == std::vector<std::int64_t>{1, 32});
  // Validation reads the registry after the plugins registered: typos are caught before any work.
  CHECK_THROWS_WITH(StageHarness("use = \"torch_encoder\"\nbackbone = \"example_small_cn\"\nsynthetic_weights = true"),
                    Catch::Contains("did you mean 'example_small_cnn'"));
  CHECK_THROWS_WITH(register_backbone(find_backbone("resnet50")), Catch::Contains("registered twice"));
}

// ------------------------------------------------------------------------------------------ hostile weight files
// Issue 18: every malformed or crafted input fails with an error naming the file: no crash, no read out of bounds,
// no unbounded allocation, and nothing a pickle names is ever called. The bytes are built here by hand.
#include "histoflow/torch_encoders/torch_checkpoint.hpp"

namespace {

std::string le_bytes(std::uint64_t v, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return out;
}

struct Member {
  std::string name, data;
  std::uint64_t local = UINT64_MAX;  // the local header offset the directory claims (default: the real one)
  std::uint64_t size = UINT64_MAX;   // the size the directory claims (default: the real one)
};

// A zip of stored entries as torch.save writes them; `zip64`: sizes and offsets in ZIP64 fields, as over 4 GiB.
std::string zip_of(const std::vector<Member>& members, bool zip64 = false) {
  std::string out, directory;
  for (const auto& m : members) {
    const std::uint64_t local = m.local == UINT64_MAX ? out.size() : m.local;
    const std::uint64_t size = m.size == UINT64_MAX ? m.data.size() : m.size;
    out += le_bytes(0x04034b50, 4) + le_bytes(20, 2) + le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(0, 4) + le_bytes(0, 4) +
           le_bytes(m.data.size(), 4) + le_bytes(m.data.size(), 4) + le_bytes(m.name.size(), 2) + le_bytes(0, 2) + m.name + m.data;
    const std::uint64_t small_size = zip64 ? 0xffffffff : size, small_local = zip64 ? 0xffffffff : local;
    directory += le_bytes(0x02014b50, 4) + le_bytes(20, 2) + le_bytes(20, 2) + le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(0, 4) +
                 le_bytes(0, 4) + le_bytes(small_size, 4) + le_bytes(small_size, 4) + le_bytes(m.name.size(), 2) +
                 le_bytes(zip64 ? 28 : 0, 2) + le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(0, 4) + le_bytes(small_local, 4) + m.name;
    if (zip64) directory += le_bytes(1, 2) + le_bytes(24, 2) + le_bytes(size, 8) + le_bytes(size, 8) + le_bytes(local, 8);
  }
  const std::uint64_t directory_at = out.size();
  out += directory;
  if (zip64) {
    const std::uint64_t record = out.size();
    out += le_bytes(0x06064b50, 4) + le_bytes(44, 8) + le_bytes(45, 2) + le_bytes(45, 2) + le_bytes(0, 4) + le_bytes(0, 4) +
           le_bytes(members.size(), 8) + le_bytes(members.size(), 8) + le_bytes(directory.size(), 8) + le_bytes(directory_at, 8);
    out += le_bytes(0x07064b50, 4) + le_bytes(0, 4) + le_bytes(record, 8) + le_bytes(1, 4);
  }
  out += le_bytes(0x06054b50, 4) + le_bytes(0, 4) + le_bytes(zip64 ? 0xffff : members.size(), 2) +
         le_bytes(zip64 ? 0xffff : members.size(), 2) + le_bytes(directory.size(), 4) + le_bytes(zip64 ? 0xffffffff : directory_at, 4) +
         le_bytes(0, 2);
  return out;
}

// Pickle protocol 2 pieces, as torch.save writes them.
std::string text(const std::string& s) { return "X" + le_bytes(s.size(), 4) + s; }
std::string integer(std::int64_t v) { return "\x8a\x08" + le_bytes(static_cast<std::uint64_t>(v), 8); }  // LONG1
std::string ints(const std::vector<std::int64_t>& values) {
  std::string p = "(";
  for (const auto v : values) p += integer(v);
  return p + "t";
}
const std::string kRebuild = "ctorch._utils\n_rebuild_tensor_v2\n";
std::string storage(const std::string& key = "0", const std::string& type = "ctorch\nFloatStorage\n") {
  return "(" + text("storage") + type + text(key) + text("cpu") + integer(4) + "tQ";
}
// torch._utils._rebuild_tensor_v2(storage, offset, shape, strides, False, OrderedDict())
std::string tensor(const std::vector<std::int64_t>& shape, const std::vector<std::int64_t>& strides, std::int64_t offset = 0,
                   const std::string& key = "0") {
  return kRebuild + "(" + storage(key) + integer(offset) + ints(shape) + ints(strides) + "\x89" + "ccollections\nOrderedDict\n)RtR";
}
std::string state_dict(const std::string& value) { return "\x80\x02}" + text("w") + value + "s."; }
// A checkpoint whose data.pkl is `pickle`, with one storage of four floats (1, 2, 3, 4).
std::string checkpoint(const std::string& pickle) {
  std::string floats;
  for (const float f : {1.0f, 2.0f, 3.0f, 4.0f}) floats.append(reinterpret_cast<const char*>(&f), 4);
  return zip_of({{"archive/data.pkl", pickle}, {"archive/data/0", floats}, {"archive/version", "3\n"}});
}

// The error of reading `bytes` as a checkpoint ("no error" when it loads).
std::string refusal(const std::string& bytes, const std::vector<std::string>& allowed = {}) {
  try {
    read_torch_checkpoint(bytes, "hostile.pth", allowed);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}
std::string pickle_refusal(const std::string& pickle) { return refusal(checkpoint(pickle)); }

std::string safetensors_refusal(const std::string& header, const std::string& data = "") {
  try {
    parse_safetensors(le_bytes(header.size(), 8) + header + data, "hostile.safetensors");
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

using namespace std::string_literals;
using Catch::Contains;
using Catch::StartsWith;
const auto kNamed = StartsWith("cannot read PyTorch checkpoint 'hostile.pth': ");

}  // namespace

TEST_CASE("hand-built checkpoints load: the test's zip and pickle builders are sound", "[torch][weights][hostile]") {
  const Checkpoint c = read_torch_checkpoint(checkpoint(state_dict(tensor({2, 2}, {2, 1}))), "good.pth");
  REQUIRE(c.tensors.count("w") == 1);
  CHECK(c.tensors.at("w").shape == std::vector<std::int64_t>{2, 2});
  const Checkpoint z = read_torch_checkpoint(zip_of({{"a/data.pkl", state_dict(tensor({1}, {1}, 3))}, {"a/data/0", std::string(16, 'x')}}, true), "zip64.pth");
  CHECK(z.tensors.at("w").offset == 3);
}

TEST_CASE("hostile zip archives: offsets and sizes near 2^64, overlaps and duplicates are refused", "[torch][weights][hostile]") {
  const std::string pickle = state_dict(tensor({1}, {1}));
  const std::string data(16, '\0');
  // Offsets and sizes from the file never wrap around: each used to pass the bounds check by overflowing it.
  CHECK_THAT(refusal(zip_of({{"a/data.pkl", pickle, UINT64_MAX - 9}}, true)), kNamed && Contains("damaged zip entry 'a/data.pkl'"));
  CHECK_THAT(refusal(zip_of({{"a/data.pkl", pickle, 0, UINT64_MAX - 1}}, true)), kNamed && Contains("runs past the end of the file"));
  CHECK_THAT(refusal(zip_of({{"a/data.pkl", pickle, 0, UINT64_MAX - 20}}, true)), kNamed && Contains("runs past the end of the file"));
  std::string far_record = zip_of({{"a/data.pkl", pickle}}, true);
  const std::size_t locator = far_record.size() - 22 - 20;
  far_record.replace(locator + 8, 8, le_bytes(UINT64_MAX - 8, 8));
  CHECK_THAT(refusal(far_record), kNamed && Contains("damaged ZIP64 directory record"));
  std::string far_directory = zip_of({{"a/data.pkl", pickle}});
  far_directory.replace(far_directory.size() - 6, 4, le_bytes(0xfffffff0, 4));
  CHECK_THAT(refusal(far_directory), kNamed && Contains("the zip directory lies past the end"));
  // A name longer than the file, an extra field longer than the entry, a ZIP64 field shorter than its values.
  std::string long_name = zip_of({{"a/data.pkl", pickle}});
  const std::size_t central = long_name.find(std::string("PK\x01\x02", 4));
  long_name.replace(central + 28, 2, le_bytes(0xffff, 2));
  CHECK_THAT(refusal(long_name), kNamed && Contains("damaged zip directory"));
  std::string long_extra = zip_of({{"a/data.pkl", pickle}}, true);
  const std::size_t central64 = long_extra.find(std::string("PK\x01\x02", 4));
  long_extra.replace(central64 + 46 + 10 + 2, 2, le_bytes(25, 2));
  CHECK_THAT(refusal(long_extra), kNamed && Contains("damaged extra field"));
  long_extra.replace(central64 + 46 + 10 + 2, 2, le_bytes(8, 2));
  CHECK_THAT(refusal(long_extra), kNamed && Contains("damaged ZIP64 field"));
  // Two entries on the same bytes (a small file naming one gigabyte many times), and one name twice.
  CHECK_THAT(refusal(zip_of({{"a/data.pkl", pickle}, {"a/data/0", data}, {"a/data/1", data, 0}}, true)),
             kNamed && Contains("zip entries overlap"));
  CHECK_THAT(refusal(zip_of({{"a/data.pkl", pickle}, {"a/data/0", data}, {"a/data/0", data}})), kNamed && Contains("holds 'a/data/0' twice"));
  // A directory that claims 2^40 entries is refused before any is read.
  std::string many = zip_of({{"a/data.pkl", pickle}}, true);
  const std::size_t record = many.find(std::string("PK\x06\x06", 4));
  many.replace(record + 32, 8, le_bytes(std::uint64_t{1} << 40, 8));
  CHECK_THAT(refusal(many), kNamed && Contains("exceed the limit archive_members") && Contains("HISTOFLOW_LIMIT_ARCHIVE_MEMBERS"));
}

TEST_CASE("hostile pickles: lengths near 2^64 end the pickle early instead of reading past it", "[torch][weights][hostile]") {
  // BINUNICODE8 of length 2^64 - 1: pos + n used to wrap to a small number and pass the bounds check.
  CHECK_THAT(pickle_refusal(std::string("\x80\x02\x8d", 3) + le_bytes(UINT64_MAX, 8) + "abc."), kNamed && Contains("ends early"));
  CHECK_THAT(pickle_refusal(std::string("\x80\x02\x8e", 3) + le_bytes(UINT64_MAX - 2, 8) + "abc."), kNamed && Contains("ends early"));
  CHECK_THAT(pickle_refusal("\x80\x02X" + le_bytes(0xffffffff, 4) + "abc."), kNamed && Contains("ends early"));
  CHECK_THAT(pickle_refusal(std::string("\x80\x02\x8b", 3) + le_bytes(0xffffffff, 4) + "."), kNamed && Contains("ends early"));
  CHECK_THAT(pickle_refusal("\x80\x02}"), kNamed && Contains("ends before its STOP"));
  CHECK_THAT(pickle_refusal("\x80\x02" "ctorch\nFloatStorage"), kNamed && Contains("unterminated GLOBAL"));
}

TEST_CASE("hostile pickles: pops below a MARK are a stack underflow, a missing MARK an error", "[torch][weights][hostile]") {
  // MARK at stack size 3, then SETITEM pops below it: the TUPLE after it used to build from past the stack's end.
  CHECK_THAT(pickle_refusal("\x80\x02NNN(st."), kNamed && Contains("unpickling stack underflow"));
  CHECK_THAT(pickle_refusal("\x80\x02}N(0t."), kNamed && Contains("unpickling stack underflow"));
  CHECK_THAT(pickle_refusal("\x80\x02N(R."), kNamed && Contains("unpickling stack underflow"));
  CHECK_THAT(pickle_refusal("\x80\x02NNt."), kNamed && Contains("could not find MARK"));
  CHECK_THAT(pickle_refusal("\x80\x02."), kNamed && Contains("unpickling stack underflow"));
}

TEST_CASE("hostile pickles: a dict that holds itself and deep nesting fail cleanly and free everything", "[torch][weights][hostile]") {
  // {"model": <itself>} through the memo: the search for the state dict used to recurse forever (and leak the cycle).
  CHECK_THAT(pickle_refusal("\x80\x02}q\x00"s + text("model") + "h\x00s."s), kNamed && Contains("holds no dictionary of tensors"));
  CHECK_THAT(pickle_refusal(std::string("\x80\x02]q\x00h\x00" "a.", 9)), kNamed && Contains("holds no dictionary of tensors"));
  // A tensor dict inside a cycle is still found.
  const Checkpoint c = read_torch_checkpoint(checkpoint("\x80\x02}q\x00"s + text("model") + "}q\x01" + text("w") + tensor({1}, {1}) + "s" +
                                                        text("up") + "h\x00ss"s + text("again") + "h\x00s."s),
                                             "cycle.pth");
  CHECK(c.nesting == "model");
  CHECK(c.tensors.size() == 1);
  // A million nested lists: the recursive destructor used to overflow the stack. Now nesting has a limit.
  const std::size_t n = 1'000'000;
  CHECK_THAT(pickle_refusal("\x80\x02" + std::string(n, ']') + std::string(n - 1, 'a') + "."),
             kNamed && Contains("levels of nested containers") && Contains("HISTOFLOW_LIMIT_PICKLE_NESTING"));
  // Dicts nested 1,500 deep under "model", each filled through the memo after it was put into its parent (so the
  // nesting counted while building stays at 1): the search for the state dict stops at the limit.
  std::string chain = "\x80\x02}r" + le_bytes(0, 4) + "0";
  for (std::uint64_t i = 1; i <= 1500; ++i) chain += "j" + le_bytes(i - 1, 4) + text("model") + "}r" + le_bytes(i, 4) + "s0";
  CHECK_THAT(pickle_refusal(chain + "j" + le_bytes(0, 4) + "."), kNamed && Contains("the dicts around its state dict") &&
                                                                   Contains("levels of nested containers"));
}

TEST_CASE("hostile pickles: the objects and memo entries one pickle may make are bounded", "[torch][weights][hostile]") {
  // OrderedDict(list) copies its list: a list of 100,000 pairs in the memo, copied 60 times by 6 bytes each, would
  // make 12 million entries from a 1 MB pickle.
  std::string copies = "\x80\x02]q\x00("s;
  for (int i = 0; i < 100'000; ++i) copies += "NN\x86";
  copies += "e";
  copies += "0ccollections\nOrderedDict\nq\x01h\x00\x85q\x02"s;
  for (int i = 0; i < 60; ++i) copies += "h\x01h\x02R0";
  CHECK_THAT(pickle_refusal(copies + "N."), kNamed && Contains("objects built by a pickle") && Contains("HISTOFLOW_LIMIT_PICKLE_OBJECTS"));
  // 10,000,001 memo entries.
  std::string memo = "\x80\x02N";
  for (std::uint32_t i = 0; i <= 10'000'000; ++i) {
    const char put[5] = {'r', static_cast<char>(i), static_cast<char>(i >> 8), static_cast<char>(i >> 16), static_cast<char>(i >> 24)};
    memo.append(put, 5);
  }
  CHECK_THAT(pickle_refusal(memo + "."), kNamed && Contains("memo entries of a pickle") && Contains("HISTOFLOW_LIMIT_PICKLE_MEMO"));
  // _codecs.encode of one memoised text, again and again, may not make more bytes than the pickle holds.
  std::string encoded = "\x80\x02" "c_codecs\nencode\nq\x00"s + text(std::string(100'000, 'x')) + text("latin1") + "\x86q\x01";
  for (int i = 0; i < 10; ++i) encoded += "h\x00h\x01R0"s;
  CHECK_THAT(pickle_refusal(encoded + "N."), kNamed && Contains("more bytes than the pickle holds"));
}

TEST_CASE("hostile tensors: shapes, strides and offsets that overflow or go negative are refused", "[torch][weights][hostile]") {
  const auto load = [](const std::string& value) { return pickle_refusal(state_dict(value)); };
  // (2^62 - 1) x 4 overflows int64 (UB, and a wrapped end could pass the storage check).
  CHECK_THAT(load(tensor({std::int64_t{1} << 62, 4}, {4, 1})), kNamed && Contains("tensor 'w'") && Contains("reach beyond any storage"));
  CHECK_THAT(load(tensor({2, 2}, {std::int64_t{1} << 62, 1})), kNamed && Contains("tensor 'w' lies outside its storage"));
  CHECK_THAT(load(tensor({1}, {1}, INT64_MAX)), kNamed && Contains("tensor 'w' lies outside its storage"));
  CHECK_THAT(load(tensor({5}, {1})), kNamed && Contains("tensor 'w' lies outside its storage"));
  CHECK_THAT(load(tensor({-1}, {1})), kNamed && Contains("negative extent or stride"));
  CHECK_THAT(load(tensor({2}, {-1}, 1)), kNamed && Contains("negative extent or stride"));
  CHECK_THAT(load(tensor({1}, {1}, -1)), kNamed && Contains("negative storage offset"));
  CHECK_THAT(load(tensor({2, 2}, {1})), kNamed && Contains("2 dimensions and 1 strides"));
  CHECK_THAT(load(tensor(std::vector<std::int64_t>(65, 1), std::vector<std::int64_t>(65, 1))),
             kNamed && Contains("exceed the limit tensor_dimensions"));
  // An empty tensor reads nothing: its offset, however large, points nowhere.
  const Checkpoint empty = read_torch_checkpoint(checkpoint(state_dict(tensor({0, 3}, {3, 1}, std::int64_t{1} << 62))), "empty.pth");
  CHECK(empty.tensors.at("w").offset == 0);
  const Checkpoint last = read_torch_checkpoint(checkpoint(state_dict(tensor({2}, {1}, 2))), "last.pth");
  CHECK(last.tensors.at("w").offset == 2);
}

TEST_CASE("hostile pickles: arguments and opcodes of the wrong kind are errors, not crashes", "[torch][weights][hostile]") {
  const auto load = [](const std::string& value) { return pickle_refusal(state_dict(value)); };
  const std::string tail = "\x89" "ccollections\nOrderedDict\n)RtR";
  CHECK_THAT(load(kRebuild + "(" + storage() + integer(0) + integer(4) + ints({1}) + tail), kNamed && Contains("shape is not a tuple of integers"));
  CHECK_THAT(load(kRebuild + "(" + storage() + integer(0) + "(" + text("x") + "t" + ints({1}) + tail), kNamed && Contains("shape is not a tuple of integers"));
  CHECK_THAT(load(kRebuild + "(" + storage() + text("0") + ints({1}) + ints({1}) + tail), kNamed && Contains("storage offset is not an integer"));
  CHECK_THAT(load(kRebuild + "(" + integer(0) + integer(0) + ints({1}) + ints({1}) + tail), kNamed && Contains("a tensor without a storage"));
  CHECK_THAT(load(kRebuild + "NR"), kNamed && Contains("arguments are not (storage, offset, shape, strides"));
  CHECK_THAT(load(kRebuild + "(" + storage() + "tR"), kNamed && Contains("arguments are not (storage, offset, shape, strides"));
  CHECK_THAT(load("NQ"), kNamed && Contains("unexpected persistent id"));
  CHECK_THAT(load("(" + text("storage") + text("torch.FloatStorage") + text("0") + text("cpu") + integer(4) + "tQ"), kNamed && Contains("unexpected persistent id"));
  CHECK_THAT(load("(" + text("storage") + "ctorch\nFloatStorage\n" + integer(0) + text("cpu") + integer(4) + "tQ"), kNamed && Contains("unexpected persistent id"));
  CHECK_THAT(load(storage("0", "ctorch\nComplexFloatStorage\n")), kNamed && Contains("storage type 'torch.ComplexFloatStorage' is not supported"));
  CHECK_THAT(load(tensor({1}, {1}, 0, "7")), kNamed && Contains("storage '7' is missing from the archive"));
  CHECK_THAT(load("NNR"), kNamed && Contains("calls something that is not a global"));
  CHECK_THAT(load("ctorch\nfloat32\n)R"), kNamed && Contains("calls 'torch.float32'"));
  CHECK_THAT(load("ctorch._utils\n_rebuild_parameter\n)R"), kNamed && Contains("too few arguments for 'torch._utils._rebuild_parameter'"));
  CHECK_THAT(load("ctorch\nSize\n" + integer(3) + "\x85R"), kNamed && Contains("torch.Size of something that is not a tuple"));
  CHECK_THAT(load("c_codecs\nencode\n" + text("\xe2\x82\xac") + text("latin1") + "\x86R"), kNamed && Contains("not latin-1"));
  CHECK_THAT(load("c_codecs\nencode\n" + text("x") + text("utf-16") + "\x86R"), kNamed && Contains("_codecs.encode other than"));
  CHECK_THAT(load("ctorch._tensor\n_rebuild_from_type_v2\n(" + kRebuild + "cos\nPathLike\n"), kNamed && Contains("names 'os.PathLike'"));
  CHECK_THAT(load("ctorch._tensor\n_rebuild_from_type_v2\n(" + kRebuild + "ctorch\nfloat32\n)Nt" + "R"), kNamed && Contains("tensor subclass"));
  CHECK_THAT(load("ctorch._utils\n_rebuild_tensor_v3\n)R"), kNamed && Contains("without a storage type"));
  CHECK_THAT(pickle_refusal("\x80\x02}N" "a."), kNamed && Contains("APPEND to something that is not a list"));
  CHECK_THAT(pickle_refusal("\x80\x02]NNs."), kNamed && Contains("SETITEM on something that is not a dict"));
  CHECK_THAT(pickle_refusal("\x80\x02}(Nu."), kNamed && Contains("do not pair up"));
  CHECK_THAT(pickle_refusal("\x80\x02(N" "d."), kNamed && Contains("do not pair up"));
  CHECK_THAT(pickle_refusal("\x80\x02h\x05."), kNamed && Contains("memo entry 5 was never stored"));
  CHECK_THAT(pickle_refusal("\x80\x02I1\n."), kNamed && Contains("unsupported pickle opcode INT (0x49) at byte 2"));
  CHECK_THAT(pickle_refusal("\x80\x02(ccollections\nOrderedDict\no."), kNamed && Contains("unsupported pickle opcode OBJ"));
  CHECK_THAT(pickle_refusal("\x80\x02(ccollections\nOrderedDict\n\x82\x01."), kNamed && Contains("unsupported pickle opcode EXT"));
  CHECK_THAT(pickle_refusal("\x80\x02\x8c\x05posixK\x01\x93."), kNamed && Contains("STACK_GLOBAL without a module and a name"));
  CHECK_THAT(pickle_refusal("\x80\x02NN\x93."), kNamed && Contains("STACK_GLOBAL without a module and a name"));
  // Harmless: integers beyond 64 bits (a seed), the torch.Size, bytes and parameters a state dict may hold.
  const Checkpoint c = read_torch_checkpoint(
      checkpoint("\x80\x02}" + text("seed") + "\x8a\x09" + std::string(8, '\xff') + std::string(1, '\0') + "s" + text("w") +
                 "ctorch._utils\n_rebuild_parameter\n(" + kRebuild + "(" + storage() + integer(1) + "ctorch\nSize\n" + ints({3}) +
                 "\x85R" + ints({1}) + "\x89" + "ccollections\nOrderedDict\n)RtR\x88" + "ccollections\nOrderedDict\n)RtRs" + text("b") +
                 "c_codecs\nencode\n" + text("\xc3\xbf" "a") + text("latin1") + "\x86Rs."),
      "fine.pth");
  REQUIRE(c.tensors.count("w") == 1);
  CHECK(c.tensors.at("w").shape == std::vector<std::int64_t>{3});
  CHECK(c.tensors.at("w").offset == 1);
}

TEST_CASE("weights only: a checkpoint that names os.system is refused by that name, and nothing runs", "[torch][weights][hostile]") {
  // tests/fixtures/encoders/evil.pth (tools/parity/make_weights_only_fixtures.py): torch.save of an object whose
  // __reduce__ returns (os.system, ("echo pwned",)) next to a state dict.
  const auto file = kFixtures / "evil.pth";
  CHECK_THROWS_WITH(read_weights(file), Contains("cannot read PyTorch checkpoint '" + file.string() + "': the pickle names 'posix.system', "
                                                 "which a weights-only checkpoint never needs; histoflow executes nothing from a "
                                                 "checkpoint (only tensors, numbers, strings, lists, tuples and dicts are read)"));
  // The same object as Python's pickle writes it with protocols 2 and 4 (GLOBAL, STACK_GLOBAL), and as INST.
  const char protocol2[] = "\x80\x02" "cposix\nsystem\nq\x00X\n\x00\x00\x00" "echo pwnedq\x01\x85q\x02Rq\x03.";
  CHECK_THAT(pickle_refusal(std::string(protocol2, sizeof protocol2 - 1)), kNamed && Contains("names 'posix.system'"));
  const char protocol4[] = "\x80\x04\x95%\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\n"
                           "echo pwned\x94\x85\x94R\x94.";
  CHECK_THAT(pickle_refusal(std::string(protocol4, sizeof protocol4 - 1)), kNamed && Contains("names 'posix.system'"));
  CHECK_THAT(pickle_refusal("\x80\x02(" + text("echo pwned") + "iposix\nsystem\n."), kNamed && Contains("names 'posix.system'"));
  CHECK_THAT(pickle_refusal("\x80\x02" "cbuiltins\neval\n."), kNamed && Contains("names 'builtins.eval'"));
  // A TorchScript archive given as weights is told apart.
  CHECK_THAT(pickle_refusal("\x80\x02" "c__torch__.torch.nn.modules.linear\nLinear\n."), kNamed && Contains("TorchScript archive"));
}

TEST_CASE("weights only: a training checkpoint with optimiser state, torch.Size, device, dtype and bytes loads", "[torch][weights]") {
  // tests/fixtures/encoders/training_checkpoint.pth (tools/parity/make_weights_only_fixtures.py): model, AdamW and
  // GradScaler state, an iteration, a seed beyond 64 bits, and torch.Size / device / dtype / bytes values.
  const auto file = kFixtures / "training_checkpoint.pth";
  const LoadedWeights w = read_weights(file);
  CHECK(w.nesting == "model");
  REQUIRE(w.tensors.size() == 4);
  CHECK(w.tensors.at("0.weight").sizes() == torch::IntArrayRef{2, 3});
  CHECK(w.tensors.at("1.bias").sizes() == torch::IntArrayRef{2});
  // The fixture's weights after one AdamW step from 0.25 * index + parameter number (lr 1e-3).
  CHECK(std::abs(w.tensors.at("1.bias")[0].item<float>() - 2.999f) < 1e-4);
}

TEST_CASE("weights only: globals the caller allows are kept as data, never called", "[torch][weights][hostile]") {
  // {"model": {"w": tensor}, "args": argparse.Namespace(lr=0.5)}, as DINO's training saves its arguments.
  const std::string pickle = "\x80\x02}" + text("model") + "}" + text("w") + tensor({4}, {1}) + "s" + "s" + text("args") +
                             "cargparse\nNamespace\n)\x81}" + text("lr") + "G?\xe0" + std::string(6, '\0') + "sbs.";
  CHECK_THAT(refusal(checkpoint(pickle)), kNamed && Contains("names 'argparse.Namespace'"));
  const Checkpoint c = read_torch_checkpoint(checkpoint(pickle), "trusted.pth", {"argparse.Namespace"});
  CHECK(c.nesting == "model");
  CHECK(c.tensors.at("w").shape == std::vector<std::int64_t>{4});
}

TEST_CASE("hostile safetensors: overflowing shapes, limits and malformed fields are refused clearly", "[torch][weights][hostile]") {
  const auto named = StartsWith("invalid safetensors file 'hostile.safetensors': ");
  // 2^62 x 4 floats: the element count times 4 used to wrap to 0 and match an empty byte range.
  CHECK_THAT(safetensors_refusal(R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})"),
             named && Contains("tensor 'w'") && Contains("more elements than any file holds"));
  CHECK_THAT(safetensors_refusal(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"),
             named && Contains("more elements than any file holds"));
  CHECK_THAT(safetensors_refusal(R"({"w":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,0]}})"),
             named && Contains("too large"));
  CHECK_THAT(safetensors_refusal(R"({"w":{"dtype":5,"shape":[1],"data_offsets":[0,4]}})", "abcd"), named && Contains("dtype is not a string"));
  CHECK_THAT(safetensors_refusal(R"({"w":{"dtype":"F32","shape":1,"data_offsets":[0,4]}})", "abcd"), named && Contains("shape is not an array"));
  CHECK_THAT(safetensors_refusal(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}})", "abcd"), named && Contains("data_offsets"));
  CHECK_THAT(safetensors_refusal(R"({"w":[1,2,3]})"), named && Contains("needs dtype, shape and data_offsets"));
  CHECK_THAT(safetensors_refusal(R"({"__metadata__":{"a":{"b":1}}})"), named && Contains("__metadata__ 'a' is not a string"));
  std::string rank = R"({"w":{"dtype":"F32","shape":[)";
  for (int i = 0; i < 65; ++i) rank += i ? ",1" : "1";
  CHECK_THAT(safetensors_refusal(rank + R"(],"data_offsets":[0,4]}})", "abcd"), named && Contains("exceed the limit tensor_dimensions"));
  // Deep nesting is parsed without recursion and freed the same way; printed, it would recurse: refused first.
  const std::size_t deep = 200'000;
  CHECK_THAT(safetensors_refusal(R"({"__metadata__":{"a":)" + std::string(deep, '[') + std::string(deep, ']') + "}}"),
             named && Contains("is not a string"));
  CHECK_THAT(safetensors_refusal(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":)" + std::string(deep, '[') +
                                 std::string(deep, ']') + "}}", "abcd"),
             Catch::Equals("no error"));
  // Duplicate keys: the last one counts, as in Python's json.
  CHECK_THAT(safetensors_refusal(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "abcd"),
             Catch::Equals("no error"));
  // More tensors than the limit, and a header larger than the limit (refused before it is parsed).
  std::string many = "{";
  for (int i = 0; i <= 100'000; ++i) many += (i ? ",\"" : "\"") + std::to_string(i) + R"(":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})";
  CHECK_THAT(safetensors_refusal(many + "}"), named && Contains("tensors in a safetensors file exceed the limit safetensors_tensors"));
  CHECK_THAT(safetensors_refusal(std::string(100'000'001, ' ')), named && Contains("its header: 100000001 bytes of a safetensors header exceed the limit"));
}
