// Reading torch.save files (pytorch_model.bin) without executing anything.
//
// Format: since torch 1.6, torch.save writes a zip archive (entries stored uncompressed):
// PREFIX/data.pkl, a pickle of the state dict in which every tensor is a call of
// torch._utils._rebuild_tensor_v2 on a storage named by a persistent id
// ('storage', torch.XStorage, KEY, LOCATION, NUMEL), and PREFIX/data/KEY, each storage's raw
// little-endian bytes. Older files are a bare pickle stream and are refused.
//
// Algorithm: the zip's central directory (zip64 included) is read and checked; data.pkl is run
// on a small pickle machine that knows only the opcodes torch's state dicts use and only these
// globals: collections.OrderedDict, torch._utils._rebuild_tensor(_v2), _rebuild_parameter and
// the torch.*Storage types. Any other global (os.system, builtins.eval, ...) or opcode is refused
// when it is read, with the file, the pickle offset and the name: nothing is ever called, so a
// file from a stranger cannot run code. The result must be a flat dict of name -> tensor;
// each tensor must be contiguous and lie inside its storage, so it is read in place from the
// mapped archive (no copy). Memory: the pickle's values (names, shapes), not the weights.
#pragma once

#include "basin/io/safetensors.h"

#include <cstdint>
#include <string>
#include <vector>

namespace basin {

struct TorchBinTensor {
    std::string name;
    Dtype dtype = Dtype::F32;
    Shape shape;
    std::uint64_t offset = 0; // of the tensor's first byte in the archive
    std::uint64_t nbytes = 0;
};

// Parses the archive held in data[0, size) (a mapped pytorch_model.bin); where names it in errors.
std::vector<TorchBinTensor> read_torch_bin(const std::uint8_t* data, std::uint64_t size, const std::string& where);

// True for file names basin reads as torch.save archives (.bin, .pt, .pth).
bool is_torch_bin_name(const fs::path& path);

} // namespace basin
