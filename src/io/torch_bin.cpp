#include "basin/io/torch_bin.h"

#include "basin/core/error.h"
#include "basin/core/strings.h"

#include <cstring>
#include <map>
#include <memory>
#include <set>

namespace basin {
namespace {

std::uint64_t le(const std::uint8_t* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i)
        v = (v << 8) | p[i];
    return v;
}

// ---------------------------------------------------------------- zip (stored entries only)

struct ZipEntry {
    std::uint64_t offset = 0; // of the entry's data in the archive
    std::uint64_t size = 0;
};

class Zip {
  public:
    Zip(const std::uint8_t* data, std::uint64_t size, const std::string& where)
        : data_(data), size_(size), where_(where) {
        BASIN_CHECK(size >= 22 && le(data, 4) == 0x04034b50, where, ": not a zip archive (torch.save writes one since ",
                    "torch 1.6; ",
                    size >= 2 && data[0] == 0x80 ? "this is an older bare pickle, which basin does not read"
                                                 : "the file is truncated or of another kind",
                    ")");
        // the end-of-central-directory record: within the last 65,557 bytes
        std::uint64_t eocd = UINT64_MAX;
        const std::uint64_t lowest = size > 65557 ? size - 65557 : 0;
        for (std::uint64_t at = size - 22 + 1; at-- > lowest;)
            if (le(data + at, 4) == 0x06054b50) {
                eocd = at;
                break;
            }
        BASIN_CHECK(eocd != UINT64_MAX, where, ": truncated zip archive (no end-of-central-directory record)");
        std::uint64_t entries = le(data + eocd + 10, 2), cd_size = le(data + eocd + 12, 4),
                      cd_offset = le(data + eocd + 16, 4);
        if (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) { // zip64
            BASIN_CHECK(eocd >= 20 && le(data + eocd - 20, 4) == 0x07064b50, where, ": zip64 locator missing");
            const std::uint64_t z = le(data + eocd - 20 + 8, 8);
            BASIN_CHECK(z <= size - 56 && le(data + z, 4) == 0x06064b50, where, ": zip64 end record at ", z,
                        " is outside the file or damaged");
            entries = le(data + z + 32, 8);
            cd_size = le(data + z + 40, 8);
            cd_offset = le(data + z + 48, 8);
        }
        BASIN_CHECK(cd_offset <= size && cd_size <= size - cd_offset, where, ": central directory (", cd_size,
                    " bytes at ", cd_offset, ") lies past the end of the file (", size, " bytes): truncated");
        std::uint64_t at = cd_offset;
        for (std::uint64_t i = 0; i < entries; ++i)
            read_entry(at, cd_offset + cd_size);
    }

    const ZipEntry* find(const std::string& name) const {
        auto it = entries_.find(name);
        return it == entries_.end() ? nullptr : &it->second;
    }
    const std::map<std::string, ZipEntry>& entries() const { return entries_; }
    std::string_view bytes(const ZipEntry& e) const {
        return {reinterpret_cast<const char*>(data_ + e.offset), std::size_t(e.size)};
    }

  private:
    void read_entry(std::uint64_t& at, std::uint64_t end) {
        BASIN_CHECK(at <= end && end - at >= 46 && le(data_ + at, 4) == 0x02014b50, where_,
                    ": damaged central directory entry at ", at);
        const std::uint8_t* h = data_ + at;
        const std::uint64_t flags = le(h + 8, 2), method = le(h + 10, 2);
        std::uint64_t size = le(h + 24, 4), comp = le(h + 20, 4), local = le(h + 42, 4);
        const std::uint64_t name_len = le(h + 28, 2), extra_len = le(h + 30, 2), comment_len = le(h + 32, 2);
        BASIN_CHECK(end - at - 46 >= name_len + extra_len + comment_len, where_, ": central directory entry at ", at,
                    " runs past the directory");
        const std::string name(reinterpret_cast<const char*>(h + 46), name_len);
        for (std::uint64_t x = 0; x + 4 <= extra_len;) { // zip64 sizes and offset
            const std::uint8_t* e = h + 46 + name_len + x;
            const std::uint64_t id = le(e, 2), len = le(e + 2, 2);
            BASIN_CHECK(x + 4 + len <= extra_len, where_, ": entry '", name, "': damaged extra field");
            if (id == 1) {
                std::uint64_t k = 4;
                auto take = [&](std::uint64_t& field) {
                    if (field != 0xFFFFFFFF) return;
                    BASIN_CHECK(k + 8 <= 4 + len, where_, ": entry '", name, "': zip64 field missing");
                    field = le(e + k, 8);
                    k += 8;
                };
                take(size);
                take(comp);
                take(local);
            }
            x += 4 + len;
        }
        at += 46 + name_len + extra_len + comment_len;
        BASIN_CHECK(!(flags & 1), where_, ": entry '", name, "' is encrypted");
        BASIN_CHECK(method == 0 && comp == size, where_, ": entry '", name, "' is compressed (method ", method,
                    "); torch.save stores entries uncompressed");
        BASIN_CHECK(local <= size_ && size_ - local >= 30 && le(data_ + local, 4) == 0x04034b50, where_, ": entry '",
                    name, "': local header at ", local, " is missing (truncated archive?)");
        const std::uint64_t start = local + 30 + le(data_ + local + 26, 2) + le(data_ + local + 28, 2);
        BASIN_CHECK(start <= size_ && size <= size_ - start, where_, ": entry '", name, "' (", size, " bytes at ",
                    start, ") runs past the end of the file (", size_, " bytes): truncated archive");
        BASIN_CHECK(entries_.emplace(name, ZipEntry{start, size}).second, where_, ": entry '", name, "' appears twice");
    }

    const std::uint8_t* data_;
    std::uint64_t size_;
    std::string where_;
    std::map<std::string, ZipEntry> entries_;
};

// ---------------------------------------------------------------- the restricted pickle machine

struct Value {
    enum Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor, Mark } kind = None;
    std::int64_t i = 0;
    double f = 0;
    std::string s;                  // Str; Global: "module.name"; Storage: the key
    std::vector<Value*> items;      // Tuple, List; Dict: key, value, key, value, ...
    Dtype dtype = Dtype::F32;       // Storage, Tensor
    std::int64_t numel = 0;         // Storage: elements
    const Value* storage = nullptr; // Tensor
    std::int64_t storage_offset = 0;
    Shape shape, stride;
};

const char* kind_name(Value::Kind k) {
    static const char* names[] = {"None", "bool", "int",    "float",   "str",    "tuple",
                                  "list", "dict", "global", "storage", "tensor", "mark"};
    return names[k];
}

bool storage_dtype(const std::string& global, Dtype* out) {
    static const std::map<std::string, Dtype> types = {
        {"torch.FloatStorage", Dtype::F32},     {"torch.DoubleStorage", Dtype::F64}, {"torch.HalfStorage", Dtype::F16},
        {"torch.BFloat16Storage", Dtype::BF16}, {"torch.LongStorage", Dtype::I64},   {"torch.IntStorage", Dtype::I32},
        {"torch.ShortStorage", Dtype::I16},     {"torch.CharStorage", Dtype::I8},    {"torch.ByteStorage", Dtype::U8},
        {"torch.BoolStorage", Dtype::BOOL}};
    auto it = types.find(global);
    if (it == types.end()) return false;
    *out = it->second;
    return true;
}

const std::set<std::string>& callable_globals() {
    static const std::set<std::string> names = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                                "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter"};
    return names;
}

class Unpickler {
  public:
    Unpickler(std::string_view bytes, std::string where) : p_(bytes), where_(std::move(where)) {}

    const Value* run() {
        while (true) {
            BASIN_CHECK(pos_ < p_.size(), where_, ": pickle ends without STOP at byte ", pos_, " (truncated)");
            op_at_ = pos_;
            const std::uint8_t op = std::uint8_t(p_[pos_++]);
            if (op == '.') {
                const Value* v = pop();
                return v;
            }
            step(op);
        }
    }

  private:
    [[noreturn]] void bad(const std::string& what) const { fail(where_, ": pickle byte ", op_at_, ": ", what); }

    Value* make(Value::Kind k) {
        BASIN_CHECK(arena_.size() < 50'000'000, where_, ": pickle makes too many objects");
        arena_.push_back(std::make_unique<Value>());
        arena_.back()->kind = k;
        return arena_.back().get();
    }
    std::uint64_t take(std::size_t n) {
        if (p_.size() - pos_ < n) bad("truncated argument");
        const auto v = le(reinterpret_cast<const std::uint8_t*>(p_.data()) + pos_, int(n));
        pos_ += n;
        return v;
    }
    std::string take_bytes(std::uint64_t n) {
        if (p_.size() - pos_ < n) bad("a string runs past the end of the pickle");
        std::string s(p_.substr(pos_, std::size_t(n)));
        pos_ += std::size_t(n);
        return s;
    }
    std::string take_line() {
        const auto end = p_.find('\n', pos_);
        if (end == std::string_view::npos || end - pos_ > 200) bad("GLOBAL: no name line");
        std::string s(p_.substr(pos_, end - pos_));
        pos_ = end + 1;
        return s;
    }
    void push(Value* v) {
        BASIN_CHECK(stack_.size() < 10'000'000, where_, ": pickle stack too deep");
        stack_.push_back(v);
    }
    Value* pop() {
        if (stack_.empty() || stack_.back()->kind == Value::Mark) bad("pops an empty stack");
        Value* v = stack_.back();
        stack_.pop_back();
        return v;
    }
    Value* top() {
        if (stack_.empty() || stack_.back()->kind == Value::Mark) bad("reads an empty stack");
        return stack_.back();
    }
    std::vector<Value*> pop_to_mark() {
        std::size_t m = stack_.size();
        while (m > 0 && stack_[m - 1]->kind != Value::Mark)
            --m;
        if (m == 0) bad("no MARK on the stack");
        std::vector<Value*> items(stack_.begin() + std::ptrdiff_t(m), stack_.end());
        stack_.resize(m - 1);
        return items;
    }
    Value* tuple(std::vector<Value*> items) {
        Value* t = make(Value::Tuple);
        t->items = std::move(items);
        return t;
    }
    void global(const std::string& module, const std::string& name) {
        const std::string full = module + "." + name;
        Value* g = make(Value::Global);
        g->s = full;
        Dtype d;
        if (callable_globals().count(full) || storage_dtype(full, &d)) return push(g);
        if (module == "torch" && ends_with(name, "Storage"))
            bad("storage type " + full +
                ": a dtype basin does not read (it reads float, double, half, bfloat16, "
                "long, int, short, char, byte and bool storages)");
        bad("global '" + full +
            "' is not allowed: a torch state dict needs only collections.OrderedDict, "
            "torch._utils._rebuild_tensor_v2/_rebuild_parameter and torch.*Storage; nothing was run");
    }
    std::int64_t as_int(const Value* v, const char* what) {
        if (v->kind != Value::Int) bad(std::string(what) + ": expected an int, found " + kind_name(v->kind));
        return v->i;
    }
    Shape as_ints(const Value* v, const char* what) {
        if (v->kind != Value::Tuple && v->kind != Value::List)
            bad(std::string(what) + ": expected a tuple of ints, found " + kind_name(v->kind));
        Shape out;
        for (const Value* x : v->items)
            out.push_back(as_int(x, what));
        return out;
    }
    Value* rebuild_tensor(const std::vector<Value*>& a) {
        if (a.size() < 4) bad("_rebuild_tensor: expected (storage, offset, size, stride, ...)");
        if (a[0]->kind != Value::Storage) bad("_rebuild_tensor: the first argument is not a storage");
        Value* t = make(Value::Tensor);
        t->storage = a[0];
        t->dtype = a[0]->dtype;
        t->storage_offset = as_int(a[1], "tensor storage offset");
        t->shape = as_ints(a[2], "tensor size");
        t->stride = as_ints(a[3], "tensor stride");
        if (t->shape.size() != t->stride.size()) bad("tensor size and stride have different lengths");
        for (auto d : t->shape)
            if (d < 0) bad("negative tensor size");
        return t;
    }
    void reduce() {
        Value* args = pop();
        Value* f = pop();
        if (f->kind != Value::Global || !callable_globals().count(f->s))
            bad(std::string("REDUCE: calls a ") + kind_name(f->kind) + (f->kind == Value::Global ? " " + f->s : "") +
                ", which is not a callable basin allows");
        if (args->kind != Value::Tuple) bad("REDUCE: arguments are not a tuple");
        if (f->s == "collections.OrderedDict") {
            if (!args->items.empty()) bad("OrderedDict: expected no arguments");
            return push(make(Value::Dict));
        }
        if (f->s == "torch._utils._rebuild_parameter") {
            if (args->items.empty() || args->items[0]->kind != Value::Tensor)
                bad("_rebuild_parameter: the first argument is not a tensor");
            return push(args->items[0]);
        }
        push(rebuild_tensor(args->items));
    }
    void persistent_id() {
        Value* pid = pop();
        if (pid->kind != Value::Tuple || pid->items.size() < 5 || pid->items[0]->kind != Value::Str ||
            pid->items[0]->s != "storage")
            bad("persistent id: expected ('storage', type, key, location, numel)");
        const Value* type = pid->items[1];
        Dtype dtype;
        if (type->kind != Value::Global || !storage_dtype(type->s, &dtype))
            bad("persistent id: the storage type is not a torch.*Storage");
        if (pid->items[2]->kind != Value::Str) bad("persistent id: the storage key is not a string");
        Value* s = make(Value::Storage);
        s->dtype = dtype;
        s->s = pid->items[2]->s;
        s->numel = as_int(pid->items[4], "storage size");
        if (s->numel < 0) bad("negative storage size");
        push(s);
    }
    void set_items(Value* dict, const std::vector<Value*>& kv) {
        if (dict->kind != Value::Dict) bad(std::string("SETITEM on a ") + kind_name(dict->kind));
        if (kv.size() % 2) bad("SETITEMS: odd number of items");
        dict->items.insert(dict->items.end(), kv.begin(), kv.end());
    }
    void append(Value* list, const std::vector<Value*>& xs) {
        if (list->kind != Value::List) bad(std::string("APPEND on a ") + kind_name(list->kind));
        list->items.insert(list->items.end(), xs.begin(), xs.end());
    }
    void memo_put(std::uint64_t index) {
        BASIN_CHECK(index < 100'000'000, where_, ": pickle memo index ", index, " too large");
        if (memo_.size() <= index) memo_.resize(std::size_t(index) + 1, nullptr);
        memo_[std::size_t(index)] = top();
    }
    void memo_get(std::uint64_t index) {
        if (index >= memo_.size() || !memo_[std::size_t(index)])
            bad("memo entry " + std::to_string(index) + " is not set");
        push(memo_[std::size_t(index)]);
    }

    void step(std::uint8_t op) {
        switch (op) {
        case 0x80: // PROTO
            if (take(1) > 5) bad("unknown pickle protocol");
            return;
        case 0x95:
            take(8);
            return; // FRAME
        case '}':
            return push(make(Value::Dict));
        case ']':
            return push(make(Value::List));
        case ')':
            return push(make(Value::Tuple));
        case '(':
            return push(make(Value::Mark));
        case 'q':
            return memo_put(take(1)); // BINPUT
        case 'r':
            return memo_put(take(4)); // LONG_BINPUT
        case 0x94:
            return memo_put(memo_.size()); // MEMOIZE
        case 'h':
            return memo_get(take(1)); // BINGET
        case 'j':
            return memo_get(take(4)); // LONG_BINGET
        case 'c': {                   // GLOBAL
            const std::string module = take_line();
            return global(module, take_line());
        }
        case 0x93: { // STACK_GLOBAL
            Value* name = pop();
            Value* module = pop();
            if (name->kind != Value::Str || module->kind != Value::Str) bad("STACK_GLOBAL: expected two strings");
            return global(module->s, name->s);
        }
        case 'X':
        case 0x8c:
        case 0x8d: { // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
            Value* v = make(Value::Str);
            v->s = take_bytes(take(op == 'X' ? 4 : op == 0x8c ? 1 : 8));
            return push(v);
        }
        case 'J':
        case 'K':
        case 'M': { // BININT, BININT1, BININT2
            Value* v = make(Value::Int);
            v->i =
                op == 'J' ? std::int64_t(std::int32_t(std::uint32_t(take(4)))) : std::int64_t(take(op == 'K' ? 1 : 2));
            return push(v);
        }
        case 0x8a: { // LONG1
            const std::uint64_t n = take(1);
            if (n > 8) bad("LONG1: integer wider than 64 bits");
            std::uint64_t raw = n ? take(std::size_t(n)) : 0;
            if (n && n < 8 && (raw >> (8 * n - 1)) & 1) raw |= ~0ull << (8 * n); // sign-extend
            Value* v = make(Value::Int);
            v->i = std::int64_t(raw);
            return push(v);
        }
        case 'G': { // BINFLOAT (big-endian)
            std::uint64_t bits = 0;
            for (int i = 0; i < 8; ++i)
                bits = (bits << 8) | take(1);
            Value* v = make(Value::Float);
            std::memcpy(&v->f, &bits, 8);
            return push(v);
        }
        case 'N':
            return push(make(Value::None));
        case 0x88:
        case 0x89: { // NEWTRUE, NEWFALSE
            Value* v = make(Value::Bool);
            v->i = op == 0x88;
            return push(v);
        }
        case 't':
            return push(tuple(pop_to_mark()));
        case 0x85:
        case 0x86:
        case 0x87: { // TUPLE1..3
            std::vector<Value*> items(std::size_t(op - 0x84));
            for (auto it = items.rbegin(); it != items.rend(); ++it)
                *it = pop();
            return push(tuple(std::move(items)));
        }
        case 'a': {
            Value* x = pop();
            return append(top(), {x});
        }
        case 'e': {
            auto xs = pop_to_mark();
            return append(top(), xs);
        }
        case 's': {
            Value* v = pop();
            Value* k = pop();
            return set_items(top(), {k, v});
        }
        case 'u': {
            auto kv = pop_to_mark();
            return set_items(top(), kv);
        }
        case 'R':
            return reduce();
        case 'Q':
            return persistent_id();
        case 'b': { // BUILD: only an OrderedDict's attributes (state_dict._metadata), which are ignored
            Value* state = pop();
            if (top()->kind != Value::Dict || (state->kind != Value::Dict && state->kind != Value::None))
                bad(std::string("BUILD on a ") + kind_name(top()->kind) + ": only a state dict's attributes are read");
            return;
        }
        default: {
            static const char* hex = "0123456789abcdef";
            bad(std::string("opcode 0x") + hex[op >> 4] + hex[op & 15] +
                " is not one torch's state dicts use; refused before anything ran");
        }
        }
    }

    std::string_view p_;
    std::size_t pos_ = 0, op_at_ = 0;
    std::string where_;
    std::vector<std::unique_ptr<Value>> arena_;
    std::vector<Value*> stack_, memo_;
};

} // namespace

bool is_torch_bin_name(const fs::path& path) {
    const auto ext = path.extension();
    return ext == ".bin" || ext == ".pt" || ext == ".pth";
}

std::vector<TorchBinTensor> read_torch_bin(const std::uint8_t* data, std::uint64_t size, const std::string& where) {
    const Zip zip(data, size, where);
    std::string prefix;
    const ZipEntry* pickle = nullptr;
    for (const auto& [name, entry] : zip.entries()) {
        const auto slash = name.find('/');
        if (slash != std::string::npos && name.substr(slash + 1) == "data.pkl") {
            BASIN_CHECK(!pickle, where, ": two data.pkl entries in the archive");
            pickle = &entry;
            prefix = name.substr(0, slash + 1);
        }
    }
    BASIN_CHECK(pickle, where, ": no PREFIX/data.pkl in the zip archive (not written by torch.save)");
    if (const ZipEntry* order = zip.find(prefix + "byteorder"))
        BASIN_CHECK(zip.bytes(*order) == "little", where, ": byte order '", zip.bytes(*order),
                    "'; basin reads little-endian storages only");
    Unpickler unpickler(zip.bytes(*pickle), where + ": " + prefix + "data.pkl");
    const Value* root = unpickler.run();
    BASIN_CHECK(root->kind == Value::Dict, where, ": the pickle holds a ", kind_name(root->kind),
                ", expected a state dict (name -> tensor)");
    std::vector<TorchBinTensor> out;
    std::set<std::string> seen;
    for (std::size_t i = 0; i + 1 < root->items.size(); i += 2) {
        const Value* k = root->items[i];
        const Value* v = root->items[i + 1];
        BASIN_CHECK(k->kind == Value::Str, where, ": a state dict key is a ", kind_name(k->kind), ", expected a name");
        BASIN_CHECK(v->kind == Value::Tensor, where, ": '", k->s, "' holds a ", kind_name(v->kind),
                    v->kind == Value::Dict ? " (a training checkpoint? save model.state_dict() instead)" : "",
                    ", expected a tensor");
        BASIN_CHECK(seen.insert(k->s).second, where, ": tensor '", k->s, "' appears twice");
        const std::uint64_t elem = dtype_size(v->dtype);
        std::int64_t numel = 1, expected = 1;
        bool contiguous = true;
        for (std::size_t d = v->shape.size(); d-- > 0;) {
            if (v->shape[d] != 1 && v->stride[d] != expected) contiguous = false;
            expected *= v->shape[d];
        }
        numel = expected;
        BASIN_CHECK(contiguous || numel == 0, where, ": tensor '", k->s, "' (shape ", shape_string(v->shape),
                    ", stride ", shape_string(v->stride), ") is not contiguous; save it with .contiguous()");
        BASIN_CHECK(v->storage_offset >= 0 && v->storage_offset <= v->storage->numel &&
                        numel <= v->storage->numel - v->storage_offset,
                    where, ": tensor '", k->s, "': storage offset ", v->storage_offset, " + ", numel,
                    " elements lies past the end of its storage (", v->storage->numel, " elements)");
        const ZipEntry* bytes = zip.find(prefix + "data/" + v->storage->s);
        BASIN_CHECK(bytes, where, ": tensor '", k->s, "': storage ", prefix, "data/", v->storage->s,
                    " is missing from the archive");
        BASIN_CHECK(bytes->size >= std::uint64_t(v->storage->numel) * elem, where, ": storage ", prefix, "data/",
                    v->storage->s, " holds ", bytes->size, " bytes, expected ", std::uint64_t(v->storage->numel) * elem,
                    " (", v->storage->numel, " x ", dtype_name(v->dtype), ")");
        out.push_back({k->s, v->dtype, v->shape, bytes->offset + std::uint64_t(v->storage_offset) * elem,
                       std::uint64_t(numel) * elem});
    }
    return out;
}

} // namespace basin
