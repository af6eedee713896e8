#pragma once
// CRC-32 (IEEE 802.3, the polynomial of zip and PNG): the checksums of PNG chunks and of zip entries
// (torch.save files written without LibTorch).
#include <cstdint>
#include <string_view>

namespace histoflow {

std::uint32_t crc32(std::string_view bytes);

}  // namespace histoflow
