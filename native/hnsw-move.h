/**
 * Moving a node of hnswlib's HierarchicalNSW to a new vector: Shoal's replacement for hnswlib's
 * updatePoint, which the addon's addPoint calls for a label already in the graph (an upsert of an
 * existing id, or a deleted label reused by a new id: point-table.ts).
 *
 * hnswlib's updatePoint rewrites the lists of the moved node's out-neighbours and connects it at
 * its new place, but the nodes that link TO it and are not among its out-neighbours keep a link
 * to where it no longer is: a wasted slot in their lists, in the region the heuristic had
 * pruned because of it. Under churn (half of the points replaced per round) those stale links pile
 * up and recall falls (bench:drift). Here instead the node is unlinked and inserted again:
 *
 *   1. a search with efConstruction at its OLD vector finds the nodes that link to it (every node
 *      the search expands has its list read: those whose list holds the node are its in-links);
 *   2. each of them gets its list rebuilt without the node, from its other neighbours and the
 *      moved node's old neighbours (hnswlib's heuristic picks among them when they are more than
 *      the list holds, as hnswlib's insert does when a neighbour's list overflows);
 *   3. the node's lists are emptied, its vector replaced, and it is connected as hnswlib's insert
 *      connects a new element, at its old level;
 *   4. it keeps one level-0 link to its old neighbourhood (and that neighbour one back, when its
 *      list has room): see keepOneOldLink.
 *
 * Deterministic: no random draws, every iteration is over vectors and heaps in an order given by
 * the graph, so the same operations in the same order give the same bytes. Single-threaded: the
 * caller holds the only reference (the index worker's thread); hnswlib's per-node locks are not
 * taken.
 */
#pragma once

#include <algorithm>
#include <cstring>
#include <queue>
#include <utility>
#include <vector>

#include "hnswlib/hnswlib.h"

namespace shoal {

using Graph = hnswlib::HierarchicalNSW<float>;
using hnswlib::tableint;
using Cand = std::pair<float, tableint>;
using MaxHeap = std::priority_queue<Cand, std::vector<Cand>, Graph::CompareByFirst>;

inline std::vector<tableint> linksAt(const Graph& g, tableint id, int level) {
  hnswlib::linklistsizeint* ll = g.get_linklist_at_level(id, level);
  const tableint* data = reinterpret_cast<const tableint*>(ll + 1);
  return std::vector<tableint>(data, data + g.getListCount(ll));
}

inline void setLinks(Graph& g, tableint id, int level, const std::vector<tableint>& links) {
  hnswlib::linklistsizeint* ll = g.get_linklist_at_level(id, level);
  const size_t cap = level == 0 ? g.maxM0_ : g.maxM_;
  tableint* data = reinterpret_cast<tableint*>(ll + 1);
  std::fill(data, data + cap, 0);
  std::copy(links.begin(), links.end(), data);
  g.setListCount(ll, static_cast<unsigned short>(links.size()));
}

/** Greedy descent at `level` from `cur` toward `q` (hnswlib's upper-layer walk). */
inline tableint greedy(const Graph& g, const void* q, tableint cur, int level) {
  float best = g.fstdistfunc_(q, g.getDataByInternalId(cur), g.dist_func_param_);
  for (bool changed = true; changed;) {
    changed = false;
    for (tableint c : linksAt(g, cur, level)) {
      const float d = g.fstdistfunc_(q, g.getDataByInternalId(c), g.dist_func_param_);
      if (d < best) {
        best = d;
        cur = c;
        changed = true;
      }
    }
  }
  return cur;
}

/**
 * A beam search of width ef at `level` from `ep` toward q, deleted nodes included, that returns the
 * nearest node found and appends to `inLinks` every expanded node whose list holds `target`.
 */
inline tableint findInLinks(Graph& g, const void* q, tableint ep, int level, tableint target, std::vector<tableint>& inLinks) {
  hnswlib::VisitedList* vl = g.visited_list_pool_->getFreeVisitedList();
  hnswlib::vl_type* visited = vl->mass;
  const hnswlib::vl_type tag = vl->curV;
  MaxHeap top;
  std::priority_queue<Cand> next;  // by -distance: nearest first
  const size_t ef = g.ef_construction_;
  float d0 = g.fstdistfunc_(q, g.getDataByInternalId(ep), g.dist_func_param_);
  top.emplace(d0, ep);
  next.emplace(-d0, ep);
  visited[ep] = tag;
  while (!next.empty()) {
    const Cand c = next.top();
    if (-c.first > top.top().first && top.size() >= ef) break;
    next.pop();
    const std::vector<tableint> links = linksAt(g, c.second, level);
    if (c.second != target && std::find(links.begin(), links.end(), target) != links.end()) inLinks.push_back(c.second);
    for (tableint n : links) {
      if (visited[n] == tag) continue;
      visited[n] = tag;
      const float d = g.fstdistfunc_(q, g.getDataByInternalId(n), g.dist_func_param_);
      if (top.size() < ef || d < top.top().first) {
        next.emplace(-d, n);
        top.emplace(d, n);
        if (top.size() > ef) top.pop();
      }
    }
  }
  g.visited_list_pool_->releaseVisitedList(vl);
  while (top.size() > 1) top.pop();
  return top.top().second;
}

/**
 * u's list at `level` without `gone`: hnswlib's heuristic over u's other neighbours and `extra`
 * (the old neighbours of `gone`), at most the level's maximum.
 */
inline void relink(Graph& g, tableint u, int level, tableint gone, const std::vector<tableint>& extra) {
  const std::vector<tableint> own = linksAt(g, u, level);
  const char* pu = g.getDataByInternalId(u);
  MaxHeap cands;
  std::vector<tableint> seen;
  seen.reserve(own.size() + extra.size());
  for (const std::vector<tableint>* list : {&own, &extra}) {
    for (tableint w : *list) {
      if (w == gone || w == u || std::find(seen.begin(), seen.end(), w) != seen.end()) continue;
      // hnswlib's insert never links to a deleted node; the old lists may hold some: keep those u had.
      if (list == &extra && g.isMarkedDeleted(w)) continue;
      seen.push_back(w);
      cands.emplace(g.fstdistfunc_(pu, g.getDataByInternalId(w), g.dist_func_param_), w);
    }
  }
  // As hnswlib's insert does for a neighbour's list: the heuristic only when the list overflows.
  const size_t cap = level == 0 ? g.maxM0_ : g.maxM_;
  if (cands.size() > cap) g.getNeighborsByHeuristic2(cands, cap);
  std::vector<tableint> links;
  links.reserve(cands.size());
  while (!cands.empty()) {
    links.push_back(cands.top().second);
    cands.pop();
  }
  setLinks(g, u, level, links);
}

/**
 * Keeps, at level 0, one link from the moved node back to its old neighbourhood: the old neighbour
 * nearest to its new vector, when its list has room. A graph gets its long links (between clusters)
 * from its first inserts, made while it was sparse; an insert into a dense graph gets local links
 * only, so without this every move of an early node loses some and a churned graph falls apart
 * into regions a search cannot leave (bench:drift, "long links").
 */
inline void keepOneOldLink(Graph& g, tableint id, const void* v, const std::vector<tableint>& old) {
  std::vector<tableint> links = linksAt(g, id, 0);
  if (links.size() >= g.maxM0_) return;
  float best = 0;
  tableint pick = id;
  for (tableint w : old) {
    if (w == id || g.isMarkedDeleted(w) || std::find(links.begin(), links.end(), w) != links.end()) continue;
    const float d = g.fstdistfunc_(v, g.getDataByInternalId(w), g.dist_func_param_);
    if (pick == id || d < best) {
      best = d;
      pick = w;
    }
  }
  if (pick == id) return;
  links.push_back(pick);
  setLinks(g, id, 0, links);
  // And back, when that neighbour's list has room (as hnswlib's insert links back, without pruning).
  std::vector<tableint> back = linksAt(g, pick, 0);
  if (back.size() < g.maxM0_ && std::find(back.begin(), back.end(), id) == back.end()) {
    back.push_back(id);
    setLinks(g, pick, 0, back);
  }
}

/** Gives node `id` (not marked deleted) the vector `v`: unlinks it from where it was and inserts it again. */
inline void movePoint(Graph& g, tableint id, const void* v) {
  const int top = g.element_levels_[id];
  const bool alone = g.cur_element_count == 1;
  if (!alone) {
    std::vector<float> old(g.data_size_ / sizeof(float));
    std::memcpy(old.data(), g.getDataByInternalId(id), g.data_size_);
    std::vector<std::vector<tableint>> oldLinks(top + 1);
    for (int l = 0; l <= top; l++) oldLinks[l] = linksAt(g, id, l);

    // 1. Its in-links, level by level along a search for its old vector.
    std::vector<std::vector<tableint>> inLinks(top + 1);
    tableint cur = g.enterpoint_node_;
    for (int l = g.maxlevel_; l > top; l--) cur = greedy(g, old.data(), cur, l);
    for (int l = top; l >= 0; l--) cur = findInLinks(g, old.data(), cur, l, id, inLinks[l]);

    // 2. Their lists without it; 3. its own lists emptied.
    for (int l = 0; l <= top; l++) {
      for (tableint u : inLinks[l]) relink(g, u, l, id, oldLinks[l]);
      setLinks(g, id, l, {});
    }
    std::memcpy(g.getDataByInternalId(id), v, g.data_size_);

    // 3. Connected as hnswlib's addPoint connects a new element at level `top`. When it is the
    // entry point, the walk starts from its nearest old neighbour on the level.
    const tableint ep = g.enterpoint_node_;
    bool started = ep != id;
    cur = ep;
    if (started) {
      for (int l = g.maxlevel_; l > top; l--) cur = greedy(g, v, cur, l);
    }
    const bool epDeleted = g.isMarkedDeleted(ep);
    for (int l = top; l >= 0; l--) {
      if (!started) {
        float best = 0;
        for (tableint n : oldLinks[l]) {
          const float d = g.fstdistfunc_(v, g.getDataByInternalId(n), g.dist_func_param_);
          if (!started || d < best) {
            best = d;
            cur = n;
            started = true;
          }
        }
        if (!started) continue;  // no other node on this level
      }
      MaxHeap found = g.searchBaseLayer(cur, v, l);
      MaxHeap cands;
      while (!found.empty()) {
        if (found.top().second != id) cands.push(found.top());
        found.pop();
      }
      if (epDeleted && ep != id) {
        cands.emplace(g.fstdistfunc_(v, g.getDataByInternalId(ep), g.dist_func_param_), ep);
        if (cands.size() > g.ef_construction_) cands.pop();
      }
      if (cands.empty()) continue;
      cur = g.mutuallyConnectNewElement(v, id, cands, l, true);
    }
    keepOneOldLink(g, id, v, oldLinks[0]);
    return;
  }
  std::memcpy(g.getDataByInternalId(id), v, g.data_size_);
}

}  // namespace shoal
