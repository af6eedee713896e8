// Converts weights to safetensors: convert_weights SOURCE TARGET.safetensors [--backbone NAME]
// With --backbone, only that backbone's tensors are written, under plain names, after a strict check.
#include <iostream>

#include "convert.hpp"

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 5 && std::string(argv[3]) == "--backbone")) {
    std::cerr << "usage: convert_weights SOURCE(.pth|.pt|.safetensors) TARGET.safetensors [--backbone NAME]\n";
    return 2;
  }
  try {
    const auto report = histoflow::torchenc::convert_to_safetensors(argv[1], argv[2], argc == 5 ? argv[4] : "");
    std::cout << "wrote " << argv[2] << ": " << report.tensors << " tensors"
              << (report.nesting.empty() ? "" : ", unwrapped from '" + report.nesting + "'")
              << (report.prefix.empty() ? "" : ", prefix '" + report.prefix + "' stripped")
              << "; source sha256 " << report.source_sha256 << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "convert_weights: " << e.what() << "\n";
    return 1;
  }
}
