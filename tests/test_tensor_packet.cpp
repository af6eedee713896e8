#include <catch2/catch.hpp>

#include "histoflow/harness.hpp"
#include "histoflow/packet.hpp"
#include "histoflow/tensor.hpp"

using namespace histoflow;

TEST_CASE("tensor: zeros is contiguous, zero-filled and typed", "[tensor]") {
  const Tensor t = Tensor::zeros(DType::Float32, {2, 3, 4});
  CHECK(t.numel() == 24);
  CHECK(t.nbytes() == 96);
  CHECK(t.strides() == std::vector<std::int64_t>{12, 4, 1});
  CHECK(t.is_contiguous());
  for (float v : t.span<float>()) CHECK(v == 0.0f);
  CHECK_THROWS_WITH(t.data<std::uint8_t>(), Catch::Contains("float32") && Catch::Contains("uint8"));
  CHECK(t.describe() == "float32[2, 3, 4] cpu");
  CHECK(Tensor::zeros(DType::UInt8, {0, 3}).defined());
}

TEST_CASE("tensor: wrap shares the owner's memory without copying", "[tensor]") {
  auto storage = std::make_shared<std::vector<float>>(6, 1.5f);
  std::weak_ptr<std::vector<float>> watch = storage;
  Tensor view;
  {
    view = Tensor::wrap(storage->data(), DType::Float32, {3, 2}, {1, 3}, storage);  // a transposed view
    storage.reset();
  }
  CHECK_FALSE(watch.expired());  // the tensor keeps the buffer alive
  CHECK_FALSE(view.is_contiguous());
  CHECK_THROWS_WITH(view.span<float>(), Catch::Contains("not contiguous"));
  CHECK(view.data<float>()[5] == 1.5f);
  view = Tensor();
  CHECK(watch.expired());
  CHECK_THROWS(Tensor::wrap(nullptr, DType::Float32, {2, 2}, {1}, nullptr));
}

TEST_CASE("packets: immutable once shared, attributes typed, batches keep members in order", "[packet]") {
  Packet p;
  p.kind = "tile";
  p.provenance.item_id = "slide-1";
  p.provenance.tile = TileCoord{512, 1024, 0, 224};
  p.attributes["label"] = std::int64_t{1};
  p.attributes["mpp"] = 0.5;
  const PacketPtr shared = make_packet(std::move(p));
  static_assert(std::is_const_v<std::remove_reference_t<decltype(*shared)>>);
  REQUIRE(shared->attribute<std::int64_t>("label"));
  CHECK(*shared->attribute<std::int64_t>("label") == 1);
  CHECK(shared->attribute<std::string>("label") == nullptr);  // wrong type: no value, no exception
  CHECK(shared->attribute<double>("missing") == nullptr);
  CHECK(shared->require<std::int64_t>("label") == 1);
  CHECK_THROWS_WITH(shared->require<std::string>("path"), Catch::Contains("item 'slide-1'") && Catch::Contains("no attribute 'path'"));
  CHECK_THROWS_WITH(shared->require<std::string>("label"), Catch::Contains("'label' of the expected type"));

  Packet q;
  q.kind = "tile";
  q.provenance.sequence = 9;
  const PacketPtr second = make_packet(std::move(q));
  const PacketPtr batch = make_batch({second, shared});
  CHECK(batch->kind == "tile");
  CHECK(batch->members.size() == 2);
  CHECK(batch->members[0] == second);
  CHECK(batch->provenance.sequence == 9);
  CHECK_THROWS(make_batch({}));
}

#include "histoflow/sha256.hpp"

TEST_CASE("sha256 matches the FIPS 180-4 test vectors", "[sha256]") {
  CHECK(histoflow::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(histoflow::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(histoflow::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  histoflow::Sha256 million;
  const std::string a(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(a.data(), a.size());
  CHECK(million.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
