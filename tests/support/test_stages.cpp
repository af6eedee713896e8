#include "support/test_stages.hpp"

#include <chrono>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "histoflow/atomic_file.hpp"
#include "histoflow/registry.hpp"

namespace histoflow::testing {

namespace {
constexpr const char* kTestTile = "test_tile";
}  // namespace

Observed& Observed::instance() {
  static Observed observed;
  return observed;
}

void Observed::reset() {
  std::lock_guard lock(mutex_);
  seen_.clear();
  flushes_.clear();
  in_flight = 0;
  peak_in_flight = 0;
  generated = 0;
  sink_calls = 0;
  tiles_in_flight = 0;
  peak_tiles_in_flight = 0;
  tiles_seen = 0;
}

void Observed::record(const std::string& stage, Seen seen) {
  std::lock_guard lock(mutex_);
  seen_[stage].push_back(std::move(seen));
}

std::vector<Seen> Observed::seen(const std::string& stage) const {
  std::lock_guard lock(mutex_);
  auto it = seen_.find(stage);
  return it == seen_.end() ? std::vector<Seen>{} : it->second;
}

void Observed::flushed(const std::string& stage) {
  std::lock_guard lock(mutex_);
  ++flushes_[stage];
}

int Observed::flush_count(const std::string& stage) const {
  std::lock_guard lock(mutex_);
  auto it = flushes_.find(stage);
  return it == flushes_.end() ? 0 : it->second;
}

namespace {

constexpr const char* kItem = "item";

void spin_for(std::int64_t microseconds) {
  if (microseconds <= 0) return;
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(microseconds);
  while (std::chrono::steady_clock::now() < until) {
  }
}

class TestSource final : public Stage {
 public:
  explicit TestSource(const StageContext& c) : count_(c.params.get_int("count")), fail_at_(c.params.get_int("fail_at")) {}
  std::int64_t size_hint() const override { return count_; }
  bool generate(Emitter& out) override {
    const std::int64_t index = next_++;
    if (index == fail_at_) throw std::runtime_error("source cannot read item " + std::to_string(index));
    auto& observed = Observed::instance();
    const std::int64_t now = observed.in_flight.fetch_add(1) + 1;
    std::int64_t peak = observed.peak_in_flight.load();
    while (now > peak && !observed.peak_in_flight.compare_exchange_weak(peak, now)) {
    }
    observed.generated.fetch_add(1);
    Packet p;
    p.kind = kItem;
    p.provenance.item_id = "item-" + std::to_string(index);
    p.provenance.sequence = static_cast<std::uint64_t>(index);
    p.attributes["index"] = index;
    out.emit(std::move(p));
    return next_ < count_;
  }

 private:
  std::int64_t count_, fail_at_, next_ = 0;
};

// A sink that ends the run's input once it has seen `after` items (a trainer whose budget is spent), and
// counts what still reaches it afterwards.
class TestEnder final : public Stage {
 public:
  explicit TestEnder(const StageContext& c) : context_(c), after_(c.params.get_int("stop_after")) {}
  void process(const PacketPtr& input, std::size_t, Emitter&) override {
    Observed::instance().record(context_.stage_id, {input->provenance.item_id, input->provenance.sequence});
    Observed::instance().in_flight.fetch_sub(1);
    if (++seen_ == after_) context_.stream->end_sources("stage '" + context_.stage_id + "' has seen " + std::to_string(after_) + " items");
  }
  void flush(Emitter&) override { Observed::instance().flushed(context_.stage_id); }

 private:
  StageContext context_;
  std::int64_t after_, seen_ = 0;
};

// Passes items through; optionally slow, failing or dropping some.
class TestMap final : public Stage {
 public:
  explicit TestMap(const StageContext& c)
      : id_(c.stage_id), fail_every_(c.params.get_int("fail_every")), drop_every_(c.params.get_int("drop_every")),
        delay_us_(c.params.get_int("delay_us")), jitter_(c.params.get_bool("jitter")) {}
  void process(const PacketPtr& in, std::size_t, Emitter& out) override {
    const auto index = *in->attribute<std::int64_t>("index");
    // Jitter makes later items overtake earlier ones, so ordering guarantees are really exercised.
    spin_for(jitter_ ? (index % 7) * delay_us_ : delay_us_);
    Observed::instance().record(id_, {in->provenance.item_id, in->provenance.sequence, 1});
    if (fail_every_ > 0 && index % fail_every_ == fail_every_ - 1)
      throw std::runtime_error("cannot process item " + std::to_string(index));
    if (drop_every_ > 0 && index % drop_every_ == drop_every_ - 1) return;
    out.emit(in);
  }

 private:
  std::string id_;
  std::int64_t fail_every_, drop_every_, delay_us_;
  bool jitter_;
};

// Emits `copies` packets per input.
class TestExpand final : public Stage {
 public:
  explicit TestExpand(const StageContext& c) : copies_(c.params.get_int("copies")) {}
  void process(const PacketPtr& in, std::size_t, Emitter& out) override {
    for (std::int64_t i = 0; i < copies_; ++i) out.emit(in);
  }

 private:
  std::int64_t copies_;
};

void update_peak(std::atomic<std::int64_t>& peak, std::int64_t now) {
  std::int64_t seen = peak.load();
  while (now > seen && !peak.compare_exchange_weak(seen, now)) {
  }
}

// Emits `tiles` packets per item on a gated output, like a tiler expanding a slide.
class TestTiler final : public Stage {
 public:
  explicit TestTiler(const StageContext& c) : tiles_(c.params.get_int("tiles")) {}
  void process(const PacketPtr& in, std::size_t, Emitter& out) override {
    for (std::int64_t i = 0; i < tiles_; ++i) {
      Packet tile;
      tile.kind = kTestTile;
      tile.provenance = in->provenance;
      tile.provenance.tile = TileCoord{i, 0, 0, 1};
      tile.attributes["index"] = *in->attribute<std::int64_t>("index");
      out.emit(std::move(tile));
    }
    // The item itself is done here: its tiles carry on under the tile budget.
    Observed::instance().in_flight.fetch_sub(1);
  }

 private:
  std::int64_t tiles_;
};

// The first stage after the tile gate: counts tiles admitted.
class TestTileCounter final : public Stage {
 public:
  explicit TestTileCounter(const StageContext&) {}
  void process(const PacketPtr& in, std::size_t, Emitter& out) override {
    auto& observed = Observed::instance();
    update_peak(observed.peak_tiles_in_flight, observed.tiles_in_flight.fetch_add(1) + 1);
    observed.tiles_seen.fetch_add(1);
    out.emit(in);
  }
};

class TestSink final : public Stage {
 public:
  explicit TestSink(const StageContext& c)
      : id_(c.stage_id), delay_us_(c.params.get_int("delay_us")), release_(c.params.get_bool("release")) {}
  void process(const PacketPtr& in, std::size_t, Emitter&) override {
    spin_for(delay_us_);
    auto& observed = Observed::instance();
    observed.sink_calls.fetch_add(1);
    const std::size_t size = in->members.empty() ? 1 : in->members.size();
    const bool tiles = (in->members.empty() ? in->kind : in->members.front()->kind) == kTestTile;
    if (release_) (tiles ? observed.tiles_in_flight : observed.in_flight).fetch_sub(static_cast<std::int64_t>(size));
    if (record_) observed.record(id_, {in->provenance.item_id, in->provenance.sequence, size});
  }
  void flush(Emitter&) override { Observed::instance().flushed(id_); }

 protected:
  std::string id_;
  std::int64_t delay_us_;
  bool release_;
  bool record_ = true;
};

// Long work at end of stream, as mil_cv's training: steps of 1 ms, each a cancellation point.
class TestTrainer final : public Stage {
 public:
  explicit TestTrainer(const StageContext& c) : context_(c), steps_(c.params.get_int("steps")) {}
  void flush(Emitter&) override {
    for (std::int64_t step = 0; step < steps_; ++step) {
      throw_if_cancelled(context_);
      spin_for(1000);
      Observed::instance().training_steps.fetch_add(1);
    }
  }

 private:
  StageContext context_;
  std::int64_t steps_;
};

class FatalStage final : public Stage {
 public:
  explicit FatalStage(const StageContext& c) : at_(c.params.get_int("at")) {}
  void process(const PacketPtr& in, std::size_t, Emitter& out) override {
    if (*in->attribute<std::int64_t>("index") == at_) throw FatalError("the model file vanished");
    out.emit(in);
  }

 private:
  std::int64_t at_;
};

// A resumable stage: items whose index is a multiple of done_every count as finished earlier; restore
// emits them (attribute restored = true) so downstream sees every item. Records its lineage.
class TestResumable final : public Stage {
 public:
  explicit TestResumable(const StageContext& c) : id_(c.stage_id), done_every_(c.params.get_int("done_every")) {}
  void set_lineage(const std::string& lineage) override { Observed::instance().record(id_ + ".lineage", {lineage, 0, 1}); }
  bool restore(const Packet& item, Emitter& out) override {
    const auto index = item.require<std::int64_t>("index");
    if (done_every_ <= 0 || index % done_every_ != 0) return false;
    Packet copy = item;
    copy.attributes["restored"] = true;
    out.emit(std::move(copy));
    return true;
  }
  void process(const PacketPtr& in, std::size_t, Emitter& out) override {
    Observed::instance().record(id_, {in->provenance.item_id, in->provenance.sequence, 1});
    out.emit(in);
  }

 private:
  std::string id_;
  std::int64_t done_every_;
};

// Phases: a sink that writes its items' indices, one per line, when the input ends; and a source that reads
// such a file when it opens (so it can run only after the writer's phase).
class TestLineWriter final : public Stage {
 public:
  explicit TestLineWriter(const StageContext& c) : file_(c.params.get_string("file")) {}
  void process(const PacketPtr& in, std::size_t, Emitter&) override {
    std::lock_guard lock(mutex_);
    lines_ += std::to_string(in->require<std::int64_t>("index")) + "\n";
  }
  void flush(Emitter&) override { write_file_atomically(file_, lines_); }

 private:
  std::filesystem::path file_;
  std::mutex mutex_;
  std::string lines_;
};

class TestLineSource final : public Stage {
 public:
  explicit TestLineSource(const StageContext& c) : file_(c.params.get_string("file")) {}
  void open() override {
    std::ifstream in(file_);
    if (!in) throw std::runtime_error("cannot read '" + file_.string() + "'");
    for (std::string line; std::getline(in, line);) indices_.push_back(std::stoll(line));
  }
  bool generate(Emitter& out) override {
    if (next_ >= indices_.size()) return false;
    Packet p;
    p.kind = kItem;
    p.provenance.item_id = "line-" + std::to_string(next_);
    p.provenance.sequence = next_;
    p.attributes["index"] = indices_[next_++];
    out.emit(std::move(p));
    return next_ < indices_.size();
  }

 private:
  std::filesystem::path file_;
  std::vector<std::int64_t> indices_;
  std::size_t next_ = 0;
};

// A shardable source: items 0..count-1, shard I of N taking those with index % N == I.
class TestShardSource final : public Stage {
 public:
  explicit TestShardSource(const StageContext& c) : count_(c.params.get_int("count")), shard_(c.shard) {
    for (std::int64_t i = shard_.index; i < count_; i += shard_.count) mine_.push_back(i);
  }
  std::vector<std::string> shard_items() const override {
    std::vector<std::string> ids;
    for (const auto i : mine_) ids.push_back("item-" + std::to_string(i));
    return ids;
  }
  bool generate(Emitter& out) override {
    if (next_ >= mine_.size()) return false;
    const std::int64_t index = mine_[next_++];
    Packet p;
    p.kind = kItem;
    p.provenance.item_id = "item-" + std::to_string(index);
    p.provenance.sequence = static_cast<std::uint64_t>(index);
    p.attributes["index"] = index;
    out.emit(std::move(p));
    return next_ < mine_.size();
  }

 private:
  std::int64_t count_;
  RunShard shard_;
  std::vector<std::int64_t> mine_;
  std::size_t next_ = 0;
};

StageContract sink_contract(std::string type, bool batched, bool ordered) {
  StageContract c;
  c.type = std::move(type);
  c.summary = "test sink";
  c.inputs = {{"items", kAnyKind, "", ordered}};
  c.params = {param_int("delay_us", 0, "busy-wait per call", 0, 1e7),
              param_bool("release", true, "decrement the in-flight counters (one sink per fan-out should)")};
  c.batched = batched;
  c.default_batch = 8;
  return c;
}

}  // namespace

void register_test_stages() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto& r = Registry::instance();
    PacketKind item;
    item.name = kItem;
    item.summary = "a test item: its index in the source's stream";
    item.attributes = {required_attribute("index", AttributeType::Int, "position in the source's stream"),
                       optional_attribute("restored", AttributeType::Bool, "restored from an earlier run")};
    r.add_kind(item);
    PacketKind tile;
    tile.name = kTestTile;
    tile.summary = "a test tile of an item, emitted under the tile budget";
    tile.attributes = {required_attribute("index", AttributeType::Int, "its item's index")};
    tile.tile_provenance = true;
    r.add_kind(tile);
    StageContract source;
    source.type = "test_source";
    source.summary = "test source";
    source.outputs = {{"items", kItem, ""}};
    source.params = {param_int("count", 10, "items", 0, 1e12), param_int("fail_at", -1, "index that fails", -1, 1e12)};
    register_stage<TestSource>(r, source);

    StageContract ender;
    ender.type = "test_ender";
    ender.summary = "test sink that ends the input after some items";
    ender.inputs = {{"items", kItem, ""}};
    ender.params = {param_int("stop_after", 10, "items before it ends the input", 1, 1e12)};
    register_stage<TestEnder>(r, ender);

    StageContract map;
    map.type = "test_map";
    map.summary = "test map";
    map.inputs = {{"items", kItem, ""}};
    map.outputs = {{"items", kItem, ""}};
    map.params = {param_int("fail_every", 0, "", 0, 1e9), param_int("drop_every", 0, "", 0, 1e9),
                  param_int("delay_us", 0, "", 0, 1e7), param_bool("jitter", false, "")};
    map.concurrency = Concurrency::Unlimited;
    map.cardinality = Cardinality::OneToOne;
    register_stage<TestMap>(r, map);

    StageContract expand;
    expand.type = "test_expand";
    expand.summary = "test expand";
    expand.inputs = {{"items", kItem, ""}};
    expand.outputs = {{"items", kItem, ""}};
    expand.params = {param_int("copies", 3, "", 0, 1000)};
    register_stage<TestExpand>(r, expand);

    StageContract fatal;
    fatal.type = "test_fatal";
    fatal.summary = "test fatal";
    fatal.inputs = {{"items", kItem, ""}};
    fatal.outputs = {{"items", kItem, "", false, true}};
    fatal.params = {param_int("at", 0, "", 0, 1e12)};
    fatal.concurrency = Concurrency::Unlimited;
    fatal.cardinality = Cardinality::OneToOne;
    register_stage<FatalStage>(r, fatal);

    StageContract tiler;
    tiler.type = "test_tiler";
    tiler.summary = "test tiler";
    tiler.inputs = {{"items", kItem, ""}};
    PortSpec gated{"tiles", kTestTile, ""};
    gated.gated = true;
    tiler.outputs = {gated};
    tiler.params = {param_int("tiles", 100, "", 0, 1e9)};
    tiler.concurrency = Concurrency::Unlimited;
    register_stage<TestTiler>(r, tiler);

    StageContract counter;
    counter.type = "test_tile_counter";
    counter.summary = "test tile counter";
    counter.inputs = {{"tiles", kTestTile, ""}};
    counter.outputs = {{"tiles", kTestTile, ""}};
    counter.concurrency = Concurrency::Unlimited;
    counter.cardinality = Cardinality::OneToOne;
    register_stage<TestTileCounter>(r, counter);

    StageContract resumable;
    resumable.type = "test_resumable";
    resumable.summary = "test resumable stage";
    resumable.inputs = {{"items", kItem, ""}};
    resumable.outputs = {{"items", kItem, "", false, true}};
    resumable.params = {param_int("done_every", 2, "items with index % done_every == 0 are finished", 0, 1e9),
                        param_int("salt", 0, "changes the lineage", 0, 1e9),
                        not_affecting_output(param_int("note", 0, "does not change the lineage", 0, 1e9))};
    resumable.resumable = true;
    register_stage<TestResumable>(r, resumable);
    resumable.type = "test_ordered_resumable";  // the same, taking its items in source order (as a trainer does)
    resumable.inputs[0].ordered = true;
    register_stage<TestResumable>(r, resumable);

    StageContract shard_source = source;
    shard_source.type = "test_shard_source";
    shard_source.summary = "test source that takes a shard (index % N == I)";
    shard_source.params = {param_int("count", 10, "items", 0, 1e12)};
    shard_source.shardable = true;
    register_stage<TestShardSource>(r, shard_source);

    StageContract writer;
    writer.needs_every_item = true;
    writer.type = "test_line_writer";
    writer.summary = "test sink writing item indices to a file at the end";
    writer.inputs = {{"items", kItem, ""}};
    writer.params = {param_required("file", ParamType::Path, "file written")};
    register_stage<TestLineWriter>(r, writer);
    StageContract line_source;
    line_source.type = "test_line_source";
    line_source.summary = "test source reading item indices from a file when it opens";
    line_source.outputs = {{"items", kItem, ""}};
    line_source.params = {param_required("file", ParamType::Path, "file read")};
    line_source.rules = {rule_file_exists("file")};
    register_stage<TestLineSource>(r, line_source);

    StageContract trainer;
    trainer.type = "test_trainer";
    trainer.summary = "test sink whose flush trains for `steps` steps of 1 ms";
    trainer.inputs = {{"items", kItem, ""}};
    trainer.params = {param_int("steps", 1000, "steps at end of stream", 0, 1e9)};
    trainer.needs_every_item = true;
    register_stage<TestTrainer>(r, trainer);
    register_stage<TestSink>(r, sink_contract("test_sink", false, false));
    register_stage<TestSink>(r, sink_contract("test_batch_sink", true, false));
    register_stage<TestSink>(r, sink_contract("test_ordered_sink", false, true));
  });
}

}  // namespace histoflow::testing
