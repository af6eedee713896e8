#include "histoflow/features/feature_file.hpp"
#include "histoflow/features/feature_file_in_process.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>

#include "hdf5_handles.hpp"
#include "histoflow/input_limits.hpp"
#include "histoflow/sealed_file.hpp"

namespace histoflow::features {

hid_t h5_check(hid_t id, const std::filesystem::path& file, const std::string& what) {
  if (id < 0) throw std::runtime_error("feature file '" + file.string() + "': " + what);
  return id;
}

void h5_silence_errors() {
  thread_local bool silenced = false;  // a thread-safe HDF5 keeps its error-printing switch per thread
  if (!silenced) H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  silenced = true;
}

namespace {

constexpr const char* kFormat = "hdf5-features";

// HDF5 1.10 has no predefined half type: IEEE binary16 described field by field (h5py reads it as float16).
H5Id half_type() {
  H5Id t(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  return t;
}

std::uint16_t to_half(float value) {  // round to nearest even, with subnormals, infinities and NaN
  std::uint32_t f;
  std::memcpy(&f, &value, 4);
  const std::uint32_t sign = (f >> 16) & 0x8000u;
  const std::int32_t exponent = static_cast<std::int32_t>((f >> 23) & 0xff) - 127 + 15;
  std::uint32_t mantissa = f & 0x7fffffu;
  if (((f >> 23) & 0xff) == 0xff) return static_cast<std::uint16_t>(sign | 0x7c00u | (mantissa ? 0x200u : 0));
  if (exponent >= 31) return static_cast<std::uint16_t>(sign | 0x7c00u);
  if (exponent <= 0) {
    if (exponent < -10) return static_cast<std::uint16_t>(sign);
    mantissa |= 0x800000u;
    const int shift = 14 - exponent;
    std::uint32_t half = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
    return static_cast<std::uint16_t>(sign | half);
  }
  std::uint32_t half = (static_cast<std::uint32_t>(exponent) << 10) | (mantissa >> 13);
  const std::uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;  // may carry into the exponent: correct
  return static_cast<std::uint16_t>(sign | half);
}

H5Id string_type() {
  H5Id t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

void write_attribute(hid_t object, const std::string& name, const Attribute& value, const std::filesystem::path& file) {
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose);
  const auto write = [&](hid_t type, const void* data) {
    H5Id attribute(h5_check(H5Acreate2(object, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), file,
                            "cannot create attribute '" + name + "'"),
                   H5Aclose);
    h5_check(H5Awrite(attribute, type, data), file, "cannot write attribute '" + name + "'");
  };
  if (const auto* i = std::get_if<std::int64_t>(&value)) write(H5T_NATIVE_INT64, i);
  else if (const auto* d = std::get_if<double>(&value)) write(H5T_NATIVE_DOUBLE, d);
  else if (const auto* b = std::get_if<bool>(&value)) {
    const std::int8_t v = *b ? 1 : 0;
    write(H5T_NATIVE_INT8, &v);
  } else {
    const char* text = std::get<std::string>(value).c_str();
    H5Id type = string_type();
    write(type, &text);
  }
}

void write_string_list_attribute(hid_t object, const std::string& name, const std::vector<std::string>& values,
                                 const std::filesystem::path& file) {
  const hsize_t n = values.size();
  H5Id space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  H5Id type = string_type();
  H5Id attribute(h5_check(H5Acreate2(object, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), file,
                          "cannot create attribute '" + name + "'"),
                 H5Aclose);
  std::vector<const char*> pointers;
  for (const auto& v : values) pointers.push_back(v.c_str());
  if (n > 0) h5_check(H5Awrite(attribute, type, pointers.data()), file, "cannot write attribute '" + name + "'");
}

void write_dataset(hid_t file_id, const std::string& name, hid_t type, const std::vector<hsize_t>& dims, const void* data,
                   const std::filesystem::path& file, const AttributeMap& attributes = {}) {
  H5Id space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  H5Id create(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_obj_track_times(create, false);  // no timestamps: the same content gives the same bytes
  H5Id set(h5_check(H5Dcreate2(file_id, name.c_str(), type, space, H5P_DEFAULT, create, H5P_DEFAULT), file,
                    "cannot create dataset '" + name + "'"),
           H5Dclose);
  bool empty = false;
  for (auto d : dims) empty = empty || d == 0;
  if (!empty) h5_check(H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), file, "cannot write dataset '" + name + "' (disk full?)");
  for (const auto& [key, value] : attributes) write_attribute(set, key, value, file);
}

void write_features(hid_t file_id, const FeatureMatrix& m, StorageType storage, const std::filesystem::path& file,
                    const AttributeMap& attributes = {}) {
  if (static_cast<std::int64_t>(m.values.size()) != m.rows * m.dim)
    throw std::invalid_argument("feature file '" + file.string() + "': " + std::to_string(m.values.size()) +
                                " values for " + std::to_string(m.rows) + " x " + std::to_string(m.dim));
  const std::vector<hsize_t> dims{static_cast<hsize_t>(m.rows), static_cast<hsize_t>(m.dim)};
  if (storage == StorageType::Float32) {
    write_dataset(file_id, "features", H5T_IEEE_F32LE, dims, m.values.data(), file, attributes);
    return;
  }
  std::vector<std::uint16_t> halves(m.values.size());
  for (std::size_t i = 0; i < halves.size(); ++i) halves[i] = to_half(m.values[i]);
  H5Id type = half_type();
  write_dataset(file_id, "features", type, dims, halves.data(), file, attributes);
}

// Builds the file in memory (HDF5's core driver), writes the image to a temporary beside `file`, seals and
// renames it. HDF5 never touches the disk, so a full disk or a read-only folder is an ordinary write error
// here rather than a half-closed HDF5 file.
template <typename Fill>
void write_sealed_hdf5(const std::filesystem::path& file, const std::string& identity, Fill fill) {
  h5_silence_errors();
  std::vector<char> image;
  {
    H5Id create(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
    H5Pset_userblock(create, kSealedHeaderBytes);
    H5Pset_obj_track_times(create, false);  // the root group too
    H5Id access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    H5Pset_fapl_core(access, 1 << 20, /*backing_store=*/false);
    const auto name = sealed_temp_path(file);  // unique among files open in this process
    H5Id h5(h5_check(H5Fcreate(name.c_str(), H5F_ACC_EXCL, create, access), file, "cannot create in memory"), H5Fclose);
    fill(h5.get(), file);
    h5_check(H5Fflush(h5, H5F_SCOPE_GLOBAL), file, "cannot flush in memory");
    const ssize_t size = H5Fget_file_image(h5, nullptr, 0);
    if (size <= 8) throw std::runtime_error("feature file '" + file.string() + "': no file image");
    image.resize(static_cast<std::size_t>(size));
    if (H5Fget_file_image(h5, image.data(), image.size()) != size)
      throw std::runtime_error("feature file '" + file.string() + "': cannot copy the file image");
  }
  // The image starts at the superblock; the user block it was created with (recorded as the superblock's
  // base address) goes in front of it.
  static constexpr char kSignature[] = "\x89HDF\r\n\x1a\n";
  if (std::memcmp(image.data(), kSignature, 8) == 0) image.insert(image.begin(), kSealedHeaderBytes, '\0');
  if (image.size() < kSealedHeaderBytes + 8 || std::memcmp(image.data() + kSealedHeaderBytes, kSignature, 8) != 0)
    throw std::runtime_error("feature file '" + file.string() + "': unexpected HDF5 file image layout");
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  if (ec) throw std::runtime_error("cannot create folder '" + file.parent_path().string() + "': " + ec.message());
  const auto temp = sealed_temp_path(file);
  {
    std::ofstream out(temp, std::ios::binary);
    if (!out) throw std::runtime_error("cannot create '" + temp.string() + "': " + std::strerror(errno) + " (read-only folder?)");
    out.write(image.data(), static_cast<std::streamsize>(image.size()));
    out.flush();
    if (!out) {
      const int error = errno;
      out.close();
      std::filesystem::remove(temp, ec);
      throw std::runtime_error("cannot write '" + temp.string() + "': " + std::strerror(error ? error : EIO) + " (disk full?)");
    }
  }
  seal_and_commit(temp, file, kFormat, identity);
}

void write_root_attributes(hid_t h5, const AttributeMap& attributes, const std::filesystem::path& file) {
  for (const auto& [key, value] : attributes) write_attribute(h5, key, value, file);
}

// ---- reading

H5Id open_for_reading(const std::filesystem::path& file, bool verify) {
  h5_silence_errors();
  if (!std::filesystem::exists(file)) throw std::runtime_error("feature file '" + file.string() + "' does not exist");
  if (verify) {
    const std::string problem = verify_sealed_file(file);
    if (!problem.empty()) throw std::runtime_error("feature file '" + file.string() + "' fails verification: " + problem);
  }
  return H5Id(h5_check(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), file, "not an HDF5 file"), H5Fclose);
}

std::vector<hsize_t> dataset_dims(hid_t set) {
  H5Id space(H5Dget_space(set), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return dims;
}

// The number of values a dataset claims, refused above the limit: a damaged or hostile header must not make the
// reader allocate what it claims. Each extent is bounded too: [2^40, 0] holds no value, but its rows would still
// be counted out one by one.
std::size_t value_count(const std::vector<hsize_t>& dims, const std::string& name, const std::filesystem::path& file) {
  std::uint64_t count = 1, largest = 0;
  for (const auto d : dims) {
    largest = std::max<std::uint64_t>(largest, d);
    if (__builtin_mul_overflow(count, static_cast<std::uint64_t>(d), &count)) count = UINT64_MAX;
  }
  check_input_limit(InputLimit::FeatureValues, std::max(count, largest), "feature file '" + file.string() + "': '" + name + "'");
  return static_cast<std::size_t>(count);
}

H5Id open_dataset(hid_t h5, const std::string& name, const std::filesystem::path& file, std::size_t rank) {
  if (H5Lexists(h5, name.c_str(), H5P_DEFAULT) <= 0)
    throw std::runtime_error("feature file '" + file.string() + "' has no dataset '" + name + "'");
  H5Id set(h5_check(H5Dopen2(h5, name.c_str(), H5P_DEFAULT), file, "cannot open dataset '" + name + "'"), H5Dclose);
  const auto dims = dataset_dims(set);
  if (dims.size() != rank)
    throw std::runtime_error("feature file '" + file.string() + "': dataset '" + name + "' should have rank " + std::to_string(rank));
  const std::size_t count = value_count(dims, name, file);  // whoever opens it trusts its extents from here on
  // Values never written read as the fill value, and HDF5 1.10 copies a damaged fill value from a null pointer
  // (found by fuzzing). Every writer of feature files writes its datasets; one without stored values is refused.
  const hsize_t stored = H5Dget_storage_size(set);
  std::error_code ec;
  const auto file_bytes = std::filesystem::file_size(file, ec);
  if (count > 0 && stored == 0)
    throw std::runtime_error("feature file '" + file.string() + "': dataset '" + name + "' has no stored values");
  if (!ec && stored > file_bytes)
    throw std::runtime_error("feature file '" + file.string() + "': dataset '" + name + "' claims " + std::to_string(stored) +
                             " bytes of storage, the file has " + std::to_string(file_bytes));
  // Every value must be stored: a chunked dataset with one chunk written would otherwise claim billions of fill
  // values from a file of kilobytes (memory, and the fill-value crash above). Compressed data may be smaller than
  // its values, by at most deflate's ratio (1032:1).
  H5Id type(H5Dget_type(set), H5Tclose);
  H5Id creation(H5Dget_create_plist(set), H5Pclose);
  const std::uint64_t element = std::max<std::size_t>(H5Tget_size(type), 1);
  const std::uint64_t expansion = H5Pget_nfilters(creation) > 0 ? 1100 : 1;
  std::uint64_t needed = 0;
  if (__builtin_mul_overflow(static_cast<std::uint64_t>(count), element, &needed) || stored > UINT64_MAX / expansion ||
      stored * expansion < needed)
    throw std::runtime_error("feature file '" + file.string() + "': dataset '" + name + "' stores " + std::to_string(stored) +
                             " bytes for " + std::to_string(count) + " values of " + std::to_string(element) +
                             " bytes: values that were never written");
  return set;
}

FeatureMatrix read_features(hid_t h5, const std::filesystem::path& file) {
  H5Id set = open_dataset(h5, "features", file, 2);
  const auto dims = dataset_dims(set);
  FeatureMatrix m;
  m.rows = static_cast<std::int64_t>(dims[0]);
  m.dim = static_cast<std::int64_t>(dims[1]);
  m.values.resize(value_count(dims, "features", file));
  H5Id type(H5Dget_type(set), H5Tclose);
  if (H5Tget_class(type) != H5T_FLOAT)
    throw std::runtime_error("feature file '" + file.string() + "': dataset 'features' is not floating point");
  if (!m.values.empty())  // HDF5 converts float16 (and float64) to float on reading
    h5_check(H5Dread(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.values.data()), file, "cannot read 'features'");
  return m;
}

std::vector<std::int64_t> read_int64(hid_t h5, const std::string& name, std::size_t rank, const std::filesystem::path& file,
                                     std::vector<hsize_t>* dims_out = nullptr) {
  H5Id set = open_dataset(h5, name, file, rank);
  const auto dims = dataset_dims(set);
  std::vector<std::int64_t> values(value_count(dims, name, file));
  const std::size_t count = values.size();
  if (count) h5_check(H5Dread(set, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), file, "cannot read '" + name + "'");
  if (dims_out) *dims_out = dims;
  return values;
}

// Variable-length strings live in HDF5's global heap, where one stored string can be named by every row: the text
// read is bounded by the file's size (a real file stores each of its strings), and a dataset is read in slices so
// that libhdf5's copies stay small before the bound is checked.
std::vector<std::string> read_strings(hid_t object, std::size_t count, bool attribute, const std::string& name,
                                      const std::filesystem::path& file) {
  H5Id type = string_type();
  std::error_code ec;
  const std::uint64_t budget = std::filesystem::file_size(file, ec);
  if (attribute && !ec && count > budget / 16)  // each string of an attribute is a 16-byte heap reference in the file
    throw std::runtime_error("feature file '" + file.string() + "': attribute '" + name + "' claims " + std::to_string(count) +
                             " strings, more than the file's " + std::to_string(budget) + " bytes can hold");
  std::uint64_t text_bytes = 0;
  std::vector<std::string> values;
  values.reserve(count);
  constexpr std::size_t kSlice = 4096;
  std::vector<char*> pointers;
  for (std::size_t start = 0; start < count; start += attribute ? count : kSlice) {
    const std::size_t n = attribute ? count : std::min(kSlice, count - start);
    pointers.assign(n, nullptr);
    herr_t rc = -1;
    if (attribute) {
      rc = H5Aread(object, type, pointers.data());
    } else {
      const hsize_t offset = start, extent = n;
      H5Id memory(H5Screate_simple(1, &extent, nullptr), H5Sclose);
      H5Id stored(H5Dget_space(object), H5Sclose);
      if (H5Sselect_hyperslab(stored, H5S_SELECT_SET, &offset, nullptr, &extent, nullptr) >= 0)
        rc = H5Dread(object, type, memory, stored, H5P_DEFAULT, pointers.data());
    }
    h5_check(rc, file, "cannot read strings '" + name + "'");
    bool over = false;
    for (char* p : pointers) {  // every string is freed, also past the bound
      if (!over && p) text_bytes += std::strlen(p);
      over = over || (!ec && text_bytes > budget);
      if (!over) values.emplace_back(p ? p : "");
      H5free_memory(p);
    }
    if (over)
      throw std::runtime_error("feature file '" + file.string() + "': strings '" + name + "' hold more text than the file's " +
                               std::to_string(budget) + " bytes (one stored string named over and over)");
  }
  return values;
}

struct AttributeVisit {
  const std::filesystem::path* file;
  AttributeMap* out;
  std::exception_ptr failure;  // an exception must not unwind through HDF5's C frames: kept, rethrown after
};

void collect_one_attribute(hid_t object, const char* name, AttributeVisit& visit) {
  H5Id attribute(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  H5Id type(H5Aget_type(attribute), H5Tclose);
  H5Id space(H5Aget_space(attribute), H5Sclose);
  if (H5Sget_simple_extent_type(space) != H5S_SCALAR) return;  // arrays (class_names) are read by name
  switch (H5Tget_class(type)) {
    case H5T_INTEGER: {
      std::int64_t v = 0;
      H5Aread(attribute, H5T_NATIVE_INT64, &v);
      (*visit.out)[name] = H5Tget_size(type) == 1 ? Attribute(v != 0) : Attribute(v);
      break;
    }
    case H5T_FLOAT: {
      double v = 0;
      H5Aread(attribute, H5T_NATIVE_DOUBLE, &v);
      (*visit.out)[name] = v;
      break;
    }
    case H5T_STRING: {
      if (H5Tis_variable_str(type) > 0) {
        (*visit.out)[name] = read_strings(attribute, 1, true, name, *visit.file)[0];
      } else {
        std::string text(value_count({H5Tget_size(type)}, name, *visit.file), '\0');
        H5Id fixed(H5Tcopy(type), H5Tclose);
        H5Aread(attribute, fixed, text.data());
        text.resize(std::strlen(text.c_str()));
        (*visit.out)[name] = text;
      }
      break;
    }
    default: break;
  }
}

herr_t collect_attribute(hid_t object, const char* name, const H5A_info_t*, void* data) {
  auto& visit = *static_cast<AttributeVisit*>(data);
  try {
    collect_one_attribute(object, name, visit);
    return 0;
  } catch (...) {
    visit.failure = std::current_exception();
    return -1;  // stops the iteration
  }
}

AttributeMap read_attributes_of(hid_t object, const std::filesystem::path& file) {
  AttributeMap out;
  AttributeVisit visit{&file, &out, nullptr};
  hsize_t index = 0;
  H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, &index, collect_attribute, &visit);
  if (visit.failure) std::rethrow_exception(visit.failure);
  return out;
}

void check_rows(std::size_t got, std::int64_t rows, const std::string& name, const std::filesystem::path& file) {
  if (static_cast<std::int64_t>(got) != rows)
    throw std::runtime_error("feature file '" + file.string() + "': '" + name + "' has " + std::to_string(got) +
                             " rows, 'features' has " + std::to_string(rows));
}

}  // namespace

void write_slide_features(const std::filesystem::path& file, const SlideFeatures& content, StorageType storage,
                          const std::string& identity) {
  check_rows(content.coords.size() / 2, content.features.rows, "coords", file);
  write_sealed_hdf5(file, identity, [&](hid_t h5, const std::filesystem::path& temp) {
    write_features(h5, content.features, storage, temp, content.features_attributes);
    write_dataset(h5, "coords", H5T_STD_I64LE, {static_cast<hsize_t>(content.features.rows), 2}, content.coords.data(), temp,
                  content.coords_attributes);
    write_root_attributes(h5, content.attributes, temp);
  });
}

void write_patch_features(const std::filesystem::path& file, const PatchFeatures& content, StorageType storage,
                          const std::string& identity) {
  check_rows(content.labels.size(), content.features.rows, "labels", file);
  check_rows(content.paths.size(), content.features.rows, "paths", file);
  for (auto label : content.labels)
    if (label < 0 || label >= static_cast<std::int64_t>(content.class_names.size()))
      throw std::invalid_argument("feature file '" + file.string() + "': label " + std::to_string(label) + " has no class name");
  write_sealed_hdf5(file, identity, [&](hid_t h5, const std::filesystem::path& temp) {
    const auto rows = static_cast<hsize_t>(content.features.rows);
    write_features(h5, content.features, storage, temp);
    write_dataset(h5, "labels", H5T_STD_I64LE, {rows}, content.labels.data(), temp);
    H5Id type = string_type();
    std::vector<const char*> pointers;
    for (const auto& p : content.paths) pointers.push_back(p.c_str());
    write_dataset(h5, "paths", type, {rows}, pointers.data(), temp);
    write_string_list_attribute(h5, "class_names", content.class_names, temp);
    write_root_attributes(h5, content.attributes, temp);
  });
}

void write_coordinates(const std::filesystem::path& file, const std::vector<std::int64_t>& coords, const AttributeMap& attributes) {
  write_sealed_hdf5(file, "{}", [&](hid_t h5, const std::filesystem::path& temp) {
    write_dataset(h5, "coords", H5T_STD_I64LE, {static_cast<hsize_t>(coords.size() / 2), 2}, coords.data(), temp, attributes);
  });
}

// ---- the readers, in this process (public ones: feature_reader_process.cpp)

namespace in_process {

SlideFeatures read_coordinates(const std::filesystem::path& file) {
  H5Id h5 = open_for_reading(file, false);
  SlideFeatures out;
  std::vector<hsize_t> dims;
  out.coords = read_int64(h5, "coords", 2, file, &dims);
  if (dims[1] != 2) throw std::runtime_error("coordinates file '" + file.string() + "': 'coords' must be [N, 2]");
  H5Id coords(H5Dopen2(h5, "coords", H5P_DEFAULT), H5Dclose);
  out.coords_attributes = read_attributes_of(coords, file);
  return out;
}

SlideFeatures read_slide_features(const std::filesystem::path& file, bool verify, bool require_coords) {
  H5Id h5 = open_for_reading(file, verify);
  SlideFeatures out;
  out.features = read_features(h5, file);
  if (!require_coords && H5Lexists(h5, "coords", H5P_DEFAULT) <= 0) {
    out.attributes = read_attributes_of(h5, file);
    return out;
  }
  std::vector<hsize_t> dims;
  out.coords = read_int64(h5, "coords", 2, file, &dims);
  if (dims[1] != 2) throw std::runtime_error("feature file '" + file.string() + "': 'coords' must be [N, 2]");
  check_rows(dims[0], out.features.rows, "coords", file);
  out.attributes = read_attributes_of(h5, file);
  H5Id coords(H5Dopen2(h5, "coords", H5P_DEFAULT), H5Dclose);
  out.coords_attributes = read_attributes_of(coords, file);
  H5Id features(H5Dopen2(h5, "features", H5P_DEFAULT), H5Dclose);
  out.features_attributes = read_attributes_of(features, file);
  return out;
}

PatchFeatures read_patch_features(const std::filesystem::path& file, bool verify, bool complete) {
  H5Id h5 = open_for_reading(file, verify);
  PatchFeatures out;
  out.features = read_features(h5, file);
  out.labels = read_int64(h5, "labels", 1, file);
  check_rows(out.labels.size(), out.features.rows, "labels", file);
  if (complete || H5Lexists(h5, "paths", H5P_DEFAULT) > 0) {
    H5Id paths = open_dataset(h5, "paths", file, 1);
    out.paths = read_strings(paths, value_count(dataset_dims(paths), "paths", file), false, "paths", file);
    check_rows(out.paths.size(), out.features.rows, "paths", file);
  }
  if (H5Aexists(h5, "class_names") <= 0) {
    if (complete) throw std::runtime_error("feature file '" + file.string() + "' has no class_names attribute");
    out.attributes = read_attributes_of(h5, file);
    return out;
  }
  {
    H5Id attribute(H5Aopen(h5, "class_names", H5P_DEFAULT), H5Aclose);
    H5Id space(H5Aget_space(attribute), H5Sclose);
    hsize_t n = 0;
    if (H5Sget_simple_extent_ndims(space) != 1)
      throw std::runtime_error("feature file '" + file.string() + "': the class_names attribute is not a list of names");
    H5Sget_simple_extent_dims(space, &n, nullptr);
    out.class_names = read_strings(attribute, value_count({n}, "class_names", file), true, "class_names", file);
  }
  for (auto label : out.labels)
    if (label < 0 || label >= static_cast<std::int64_t>(out.class_names.size()))
      throw std::runtime_error("feature file '" + file.string() + "': label " + std::to_string(label) + " outside class_names");
  out.attributes = read_attributes_of(h5, file);
  return out;
}

FeatureFileShape read_feature_shape(const std::filesystem::path& file) {
  H5Id h5 = open_for_reading(file, false);
  FeatureFileShape out;
  {
    H5Id set = open_dataset(h5, "features", file, 2);
    const auto dims = dataset_dims(set);
    out.rows = static_cast<std::int64_t>(dims[0]);
    out.dim = static_cast<std::int64_t>(dims[1]);
    out.features_attributes = read_attributes_of(set, file);
  }
  if (H5Lexists(h5, "coords", H5P_DEFAULT) > 0) {
    H5Id coords = open_dataset(h5, "coords", file, 2);
    const auto dims = dataset_dims(coords);
    if (dims[1] != 2) throw std::runtime_error("feature file '" + file.string() + "': 'coords' must be [N, 2]");
    check_rows(dims[0], out.rows, "coords", file);
    out.has_coords = true;
  }
  out.attributes = read_attributes_of(h5, file);
  return out;
}

AttributeMap read_feature_attributes(const std::filesystem::path& file) {
  H5Id h5 = open_for_reading(file, false);
  return read_attributes_of(h5, file);
}

}  // namespace in_process
}  // namespace histoflow::features
