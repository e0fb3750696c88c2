namespace Treechunk.Chunking;

public sealed record PlannedLayer(IReadOnlyList<string> Components, long Size);

public sealed record ChunkPlan(IReadOnlyList<PlannedLayer> Layers)
{
    /// <summary>True when the plan kept a previous plan's layers (see <see cref="ChunkPlanner.Plan"/>).</summary>
    public bool KeptPrevious { get; init; }
}

/// <summary>
/// Packs components into at most maxLayers layers. A pure function: the same components give the
/// same plan. This first packing gives the largest components a layer each, keeps the volatile
/// state alone, and groups the rest into contiguous runs in name order (so a new small package
/// joins one group instead of shifting them all).
/// </summary>
public static class ChunkPlanner
{
    /// <param name="previous">
    /// The plan of the image this one updates (read back from its layer annotations), or null.
    /// When given and it still fits, every component that was in it stays with the components it
    /// shared a layer with, in the same order, so those layers come out the same; components it
    /// did not have are planned into the layers left over. When it does not fit the budget, the
    /// plan starts afresh (<see cref="ChunkPlan.KeptPrevious"/> is false).
    /// </param>
    public static ChunkPlan Plan(IReadOnlyList<Component> components, int maxLayers, ChunkPlan? previous = null)
    {
        if (maxLayers < 1) throw new TreechunkException("--max-layers must be at least 1");
        if (components.Count == 0) return new ChunkPlan([]);
        if (previous != null && KeepPrevious(components, maxLayers, previous) is { } kept) return kept;

        var state = components.Where(c => c.Kind == ComponentKind.State).ToList();
        var rest = components.Where(c => c.Kind != ComponentKind.State).ToList();
        // The state layer changes on every update; keep it apart unless only one layer is allowed.
        bool stateAlone = state.Count > 0 && maxLayers > 1 && rest.Count > 0;
        if (!stateAlone) { rest.AddRange(state); state.Clear(); }
        int budget = maxLayers - (stateAlone ? 1 : 0);
        // When components must share layers, a few layers stay free for the components a later
        // update brings, so that update (planned with this plan as its previous) keeps every
        // layer and adds one, instead of reshuffling the groups.
        if (rest.Count > budget) budget -= ReservedLayers(budget);

        var layers = new List<PlannedLayer>();
        bool sizeDriven = rest.All(c => c.Kind == ComponentKind.Chunk);
        if (sizeDriven)
        {
            // content-based / fixed: chunks are already about chunkSize; merge neighbours only if too many.
            layers.AddRange(PackContiguous(rest.OrderBy(c => c.Name, StringComparer.Ordinal).ToList(), budget));
        }
        else if (rest.Count <= budget)
        {
            layers.AddRange(rest.OrderByDescending(c => c.Size).ThenBy(c => c.Name, StringComparer.Ordinal)
                .Select(c => new PlannedLayer([c.Name], c.Size)));
        }
        else
        {
            int groups = Math.Max(1, budget / 4);
            int singles = budget - groups;
            var bySize = rest.OrderByDescending(c => c.Size).ThenBy(c => c.Name, StringComparer.Ordinal).ToList();
            layers.AddRange(bySize.Take(singles).Select(c => new PlannedLayer([c.Name], c.Size)));
            var grouped = bySize.Skip(singles).OrderBy(c => c.Name, StringComparer.Ordinal).ToList();
            layers.AddRange(PackContiguous(grouped, groups));
        }
        if (stateAlone)
            layers.Add(new PlannedLayer(state.Select(c => c.Name).OrderBy(n => n, StringComparer.Ordinal).ToList(), state.Sum(c => c.Size)));
        return new ChunkPlan(layers);
    }

    private static ChunkPlan? KeepPrevious(IReadOnlyList<Component> components, int maxLayers, ChunkPlan previous)
    {
        var byName = components.ToDictionary(c => c.Name, StringComparer.Ordinal);
        var placed = new HashSet<string>(StringComparer.Ordinal);
        var layers = new List<PlannedLayer>();
        foreach (var old in previous.Layers)
        {
            var still = old.Components.Where(n => byName.ContainsKey(n) && placed.Add(n)).ToList();
            if (still.Count > 0) layers.Add(new PlannedLayer(still, still.Sum(n => byName[n].Size)));
        }
        var added = components.Where(c => !placed.Contains(c.Name)).ToList();
        int room = maxLayers - layers.Count;
        // A previous plan that no longer fits the budget is dropped: the caller says so.
        if (layers.Count == 0 || room < 0) return null;
        if (added.Count > 0 && room > 0) layers.AddRange(Plan(added, room).Layers);
        else if (added.Count > 0)
        {
            // No layer left for them: they join the smallest layer that is not the volatile
            // state, so one layer changes rather than all of them.
            int target = Enumerable.Range(0, layers.Count)
                .Where(i => layers[i].Components.All(n => byName[n].Kind != ComponentKind.State))
                .DefaultIfEmpty(0)
                .MinBy(i => layers[i].Size);
            var merged = layers[target].Components.Concat(added.Select(c => c.Name).OrderBy(n => n, StringComparer.Ordinal)).ToList();
            layers[target] = new PlannedLayer(merged, layers[target].Size + added.Sum(c => c.Size));
        }
        return new ChunkPlan(layers) { KeptPrevious = true };
    }

    /// <summary>Layers a fresh plan leaves free for later components: 1 in 32 (at least 1 from 4 layers on).</summary>
    internal static int ReservedLayers(int budget) => budget >= 32 ? budget / 32 : budget >= 4 ? 1 : 0;

    /// <summary>
    /// Splits an ordered list into at most <paramref name="bins"/> contiguous runs of about equal
    /// size. Using every bin keeps groups as small as the layer budget allows, which also keeps
    /// them under the chunk size whenever that is possible at all. Greedy cuts can make a few
    /// runs too many; then the two neighbours with the fewest bytes together merge, one pair at a
    /// time, so a small change to the input moves a boundary or two, never all of them.
    /// </summary>
    internal static List<PlannedLayer> PackContiguous(List<Component> ordered, int bins)
    {
        if (ordered.Count == 0) return [];
        if (ordered.Count <= bins) return ordered.Select(c => new PlannedLayer([c.Name], c.Size)).ToList();
        long total = ordered.Sum(c => c.Size + ContentDefinedSplitter.EntryOverhead);
        long target = Math.Max(1, (total + bins - 1) / bins);
        var runs = new List<(List<string> Names, long Bytes, long Weight)>();
        var names = new List<string>();
        long acc = 0, bytes = 0;
        foreach (var c in ordered)
        {
            long s = c.Size + ContentDefinedSplitter.EntryOverhead;
            if (names.Count > 0 && acc + s > target)
            {
                runs.Add((names, bytes, acc));
                (names, acc, bytes) = ([], 0, 0);
            }
            names.Add(c.Name);
            acc += s;
            bytes += c.Size;
        }
        if (names.Count > 0) runs.Add((names, bytes, acc));
        while (runs.Count > bins)
        {
            int best = 0;
            for (int i = 1; i < runs.Count - 1; i++)
                if (runs[i].Weight + runs[i + 1].Weight < runs[best].Weight + runs[best + 1].Weight) best = i;
            runs[best] = ([.. runs[best].Names, .. runs[best + 1].Names], runs[best].Bytes + runs[best + 1].Bytes, runs[best].Weight + runs[best + 1].Weight);
            runs.RemoveAt(best + 1);
        }
        return runs.Select(r => new PlannedLayer(r.Names, r.Bytes)).ToList();
    }
}
