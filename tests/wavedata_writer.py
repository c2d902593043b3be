"""Write a Bari/Lecce WaveData beam-test file with PyROOT (the `root` wheel), as the groups'
converter does (bdanzi/drifttubes_offline_analysis, dchdatareade_test_beam: DCDataReader.cpp):
TTree ``data``, ``tree->Branch("x", &waveData, 64000)`` (split level 99), per event
setEventNumber, setX742ChannelData per channel, Fill; then Write. Run as a script of its own
(ROOT stays out of the test process)::

    python tests/wavedata_writer.py OUT.root IN.npz

IN.npz: ``codes`` (events, channels, 1024) uint16, ``channels`` (channels,) and ``events`` (events,).

The classes' data members, bases and ClassDef versions are the originals' (WaveData.h,
RunHeader.h); their member functions are inlined. ROOT has no dictionary for the map member
``std::unordered_map<uint16, std::vector<uint16>>``: declared alone, an interpreted WaveData is
written *without* it (TStreamerInfo::Build: "we do not have a dictionary for the collection"),
so the few lines rootcling would generate for it are declared first, and no compiler is needed.
A file this writes has the class checksums of the converter's (WaveData 0x6f00152d, RunHeader
0xbd618072); tests/data/wavedata-converter-run07.root was written by the converter itself.
"""

import sys

import numpy as np

COLLECTION_DICT_CPP = r"""
#include <unordered_map>
#include <vector>
#include "TClass.h"
#include "TIsAProxy.h"
#include "TCollectionProxyInfo.h"
#include "TGenericClassInfo.h"
namespace wavedata_proto_dict {
using Map_t = std::unordered_map<unsigned short, std::vector<unsigned short> >;
static TClass *Map_Dictionary();
static void *Map_new(void *p) { return p ? ::new (p) Map_t : new Map_t; }
static void *Map_newArray(Long_t n, void *p) { return p ? ::new (p) Map_t[n] : new Map_t[n]; }
static void Map_delete(void *p) { delete static_cast<Map_t *>(p); }
static void Map_deleteArray(void *p) { delete[] static_cast<Map_t *>(p); }
static void Map_destruct(void *p) { static_cast<Map_t *>(p)->~Map_t(); }
static ::ROOT::TGenericClassInfo *Map_Init() {
  Map_t *ptr = nullptr;
  static ::TVirtualIsAProxy *isa_proxy = new ::TIsAProxy(typeid(Map_t));
  static ::ROOT::TGenericClassInfo instance(
      "unordered_map<unsigned short,vector<unsigned short> >", -2, "unordered_map", 102,
      typeid(Map_t), ::ROOT::Internal::DefineBehavior(ptr, ptr), &Map_Dictionary, isa_proxy, 4,
      sizeof(Map_t), alignof(Map_t));
  instance.SetNew(&Map_new);
  instance.SetNewArray(&Map_newArray);
  instance.SetDelete(&Map_delete);
  instance.SetDeleteArray(&Map_deleteArray);
  instance.SetDestructor(&Map_destruct);
  instance.AdoptCollectionProxyInfo(
      ::ROOT::Detail::TCollectionProxyInfo::Generate(::ROOT::Detail::TCollectionProxyInfo::MapInsert<Map_t>()));
  return &instance;
}
static TClass *Map_Dictionary() { return Map_Init()->GetClass(); }
static ::ROOT::TGenericClassInfo *Map_registered = Map_Init();
}  // namespace wavedata_proto_dict
"""

CLASSES_CPP = r"""
#ifndef WAVEDATA_PROTO_CLASSES
#define WAVEDATA_PROTO_CLASSES
#include <utility>
#include <vector>
#include <unordered_map>
#include <algorithm>
#include <stdlib.h>
#include "TObject.h"

// ---------------- RunHeader.h (verbatim members) ----------------
class RunHeader: public TObject {
 public:
  RunHeader(): _nuberOfX742PointsPerChannel(1024) {}
  RunHeader(__uint8_t ndevs, __uint16_t nuberOfX742Channels,
            __uint32_t runnum, __uint64_t beginTime):
      _ndevs(ndevs), _nuberOfX742PointsPerChannel(1024),
      _nuberOfX742Channels(nuberOfX742Channels), _runnum(runnum), _beginTime(beginTime) {}
  RunHeader(const RunHeader& runHeader):
      _ndevs(runHeader.getNumberOfDevicesInRun()),
      _nuberOfX742PointsPerChannel(1024),
      _nuberOfX742Channels(runHeader.getNumberOfX742Channels()),
      _runnum(runHeader.getRunNumber()),
      _beginTime(runHeader.getBeginTime()) {}
  virtual ~RunHeader() {}
  __uint8_t getNumberOfDevicesInRun() const { return _ndevs; }
  __uint16_t getNumberOfX742PointsPerChannel() const { return _nuberOfX742PointsPerChannel; }
  __uint16_t getNumberOfX742Channels() const { return _nuberOfX742Channels; }
  __uint32_t getRunNumber() const { return _runnum; }
  __uint64_t getBeginTime() const { return _beginTime; }
 private:
  __uint8_t _ndevs;
  const __uint16_t _nuberOfX742PointsPerChannel;
  __uint16_t _nuberOfX742Channels;
  __uint32_t _runnum;
  __uint64_t _beginTime;
  ClassDef(RunHeader, 1)
};

// ---------------- WaveData.h (verbatim members) ----------------
class WaveData: public TObject {
 public:
  typedef std::vector<__uint16_t> x742chdata;
  typedef std::unordered_map<__uint16_t, x742chdata > x742map;
  typedef std::vector<__uint32_t> v1190data;
  typedef std::pair<int, int> v1190ch;
  typedef std::vector<v1190ch > v1190ConvData;
  WaveData() {}
  explicit WaveData(const RunHeader& runHeader): _runHeader(runHeader) {}
  virtual ~WaveData() {}
  const RunHeader* const getRunHeader() const { return &_runHeader; }
  const x742map& getX742Data() const { return _chdata_x742; }
  const x742chdata& getChannelDataX742(__uint16_t chNumber) const { return _chdata_x742.at(chNumber); }
  __uint16_t getChannelDataX742(__uint16_t chNumber, __uint16_t pointNumber) const {
    return _chdata_x742.at(chNumber)[pointNumber];
  }
  const v1190data& getV1190Data() const { return _chdata_v1190; }
  __uint32_t getV1190Data(__uint16_t index) const { return _chdata_v1190[index]; }
  v1190ConvData convertV1190Data() const {
    v1190ConvData res;
    res.reserve(_chdata_v1190.size());
    for (const auto& data : _chdata_v1190) {
      if ((data & 0xf8000000) != 0x00000000) continue;
      res.push_back(v1190ch(0x7F & (data >> 19), 0x7FFFF & data));
    }
    return res;
  }
  __uint32_t getEventNumber() const { return _evnum; }
  void setX742ChannelData(const __uint16_t& chNumber, const __uint16_t* const chdata) {
    _chdata_x742[chNumber] = WaveData::x742chdata(_runHeader.getNumberOfX742PointsPerChannel());
    std::copy(chdata, chdata + _runHeader.getNumberOfX742PointsPerChannel(),
              _chdata_x742[chNumber].begin());
  }
  void setV1190ChannelData(const __uint16_t& blockSize, const __uint32_t* const chdata) {
    _chdata_v1190.resize(blockSize);
    std::copy(chdata, chdata + blockSize, _chdata_v1190.begin());
  }
  void setEventNumber(const __uint32_t& evnum) { _evnum = evnum; }
 private:
  RunHeader _runHeader;
  x742map _chdata_x742;
  v1190data _chdata_v1190;
  __uint32_t _evnum;
  ClassDef(WaveData, 1)
};
#endif
"""


def write(out: str, codes: np.ndarray, channels: np.ndarray, events: np.ndarray, run: int = 7) -> None:
    """Write ``codes`` (events, channels, 1024) as tree data, branch x (see the module doc)."""
    import ROOT

    ROOT.gROOT.SetBatch(True)
    for source in (COLLECTION_DICT_CPP, CLASSES_CPP):
        if not ROOT.gInterpreter.Declare(source):
            sys.exit("ROOT could not declare the WaveData classes")
    f = ROOT.TFile.Open(out, "RECREATE")
    tree = ROOT.TTree("data", "")
    wave = ROOT.WaveData(ROOT.RunHeader(1, len(channels), run, 1_657_800_000))
    tree.Branch("x", wave, 64000)
    for i, event in enumerate(events):
        wave.setEventNumber(int(event))
        for c, channel in enumerate(channels):
            wave.setX742ChannelData(int(channel), np.ascontiguousarray(codes[i, c], dtype=np.uint16))
        tree.Fill()
    f.cd()
    tree.Write()
    f.Close()


if __name__ == "__main__":
    with np.load(sys.argv[2]) as z:
        write(sys.argv[1], z["codes"], z["channels"], z["events"])
