namespace Treechunk.Chunking;

public sealed record PlannedLayer(IReadOnlyList<string> Components, long Size);

public sealed record ChunkPlan(IReadOnlyList<PlannedLayer> Layers)
{
    /// <summary>True when the plan kept a previous plan's layers (see <see cref="ChunkPlanner.Plan"/>).</summary>
    public bool KeptPrevious { get; init; }
}

/// <summary>
/// Packs components into at most maxLayers layers, minimising the expected download of the next
/// update: the sum over layers of P(layer changes) x its size, with P from each component's
/// change history (<see cref="ChangeLikelihood"/>). A pure function: the same components give
/// the same plan.
///
/// The volatile state gets a layer of its own, last. The rest is sorted into stability classes
/// (likelihoods rounded to a power of two), most stable first. Within a class the largest
/// members get layers of their own and the rest share contiguous runs in name order, so the
/// parts of one package sit together and a new small package joins one run instead of shifting
/// them all. Layers go to the classes where they save the most expected bytes per layer:
/// frequently changing, large classes get many layers, classes that seldom change share a few.
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
            // A layer each; the most stable first, so the layers an update leaves alone are a prefix.
            layers.AddRange(rest.OrderBy(c => StabilityClass(Likelihood(c)))
                .ThenByDescending(c => c.Size).ThenBy(c => c.Name, StringComparer.Ordinal)
                .Select(c => new PlannedLayer([c.Name], c.Size)));
        }
        else
        {
            layers.AddRange(PackByExpectedDownload(rest, budget));
        }
        if (stateAlone)
            layers.Add(new PlannedLayer(state.Select(c => c.Name).OrderBy(n => n, StringComparer.Ordinal).ToList(), state.Sum(c => c.Size)));
        return new ChunkPlan(layers);
    }

    /// <summary>P(the component changes in the next update).</summary>
    private static double Likelihood(Component c) => ChangeLikelihood.OfWhole(c) * ChangeLikelihood.ShareOf(c);

    /// <summary>
    /// The likelihood's power of two, from -8 (about 1 in 256) to 0 (always). Rounding keeps a
    /// package in its class when its history grows by an entry, so plans stay put across builds.
    /// </summary>
    internal static int StabilityClass(double likelihood) =>
        likelihood <= 0 ? -8 : Math.Clamp((int)Math.Round(Math.Log2(likelihood)), -8, 0);

    private static List<PlannedLayer> PackByExpectedDownload(List<Component> rest, int budget)
    {
        var byName = rest.ToDictionary(c => c.Name, StringComparer.Ordinal);
        var classes = rest.GroupBy(c => StabilityClass(Likelihood(c)))
            .OrderBy(g => g.Key)
            .Select(g => g.OrderBy(c => c.Name, StringComparer.Ordinal).ToList())
            .ToList();
        // More classes than layers: the neighbouring pair with the fewest bytes shares a class.
        while (classes.Count > budget)
        {
            int best = 0;
            for (int i = 1; i < classes.Count - 1; i++)
                if (classes[i].Sum(c => c.Size) + classes[i + 1].Sum(c => c.Size) < classes[best].Sum(c => c.Size) + classes[best + 1].Sum(c => c.Size))
                    best = i;
            classes[best] = [.. classes[best], .. classes[best + 1]];
            classes[best].Sort((a, b) => StringComparer.Ordinal.Compare(a.Name, b.Name));
            classes.RemoveAt(best + 1);
        }

        var bins = classes.Select(_ => 1).ToArray();
        var packed = new Dictionary<(int, int), (double Cost, int Runs)>();
        (double Cost, int Runs) Pack(int k, int b)
        {
            if (!packed.TryGetValue((k, b), out var v))
            {
                var runs = PackClass(classes[k], b);
                packed[(k, b)] = v = (runs.Sum(l => ChangeLikelihood.OfLayer(l.Components.Select(n => byName[n])) * (l.Size + l.Components.Count * ContentDefinedSplitter.EntryOverhead)), runs.Count);
            }
            return v;
        }
        double Cost(int k, int b) => Pack(k, b).Cost;
        // Cutting a class into more runs does not always pay at once (the boundaries move, and the
        // cut may give fewer runs than asked), so each class is judged by its best saving per
        // layer actually added, over any number of extra runs the layers left allow.
        while (true)
        {
            int left = budget - Enumerable.Range(0, classes.Count).Sum(k => Pack(k, bins[k]).Runs);
            int pick = -1, take = 0;
            double bestRate = 0;
            for (int k = 0; k < classes.Count; k++)
            {
                var now = Pack(k, bins[k]);
                for (int b = bins[k] + 1; b <= classes[k].Count; b++)
                {
                    var more = Pack(k, b);
                    int added = more.Runs - now.Runs;
                    if (added > left) break;
                    double rate = (now.Cost - more.Cost) / Math.Max(1, added);
                    if (rate > bestRate) (pick, take, bestRate) = (k, b, rate);
                }
            }
            if (pick < 0) break;
            bins[pick] = take;
        }
        // Layers no class gains from (by this estimate) still go to use: to the class with the
        // most expected bytes, so the whole budget is spent and plans do not depend on ties.
        var full = new bool[classes.Count];
        while (true)
        {
            int used = Enumerable.Range(0, classes.Count).Sum(k => Pack(k, bins[k]).Runs);
            var open = Enumerable.Range(0, classes.Count).Where(k => !full[k] && bins[k] < classes[k].Count).ToList();
            if (used >= budget || open.Count == 0) break;
            int k = open.MaxBy(i => Cost(i, bins[i]));
            if (used - Pack(k, bins[k]).Runs + Pack(k, bins[k] + 1).Runs > budget) full[k] = true;
            else bins[k]++;
        }
        return classes.SelectMany((members, k) => PackClass(members, bins[k])).ToList();
    }

    /// <summary>
    /// One stability class in at most <paramref name="bins"/> layers: the largest members alone
    /// (at the same likelihood, a big component costs most when it shares), the rest in a quarter
    /// of the layers as contiguous runs in name order.
    /// </summary>
    private static List<PlannedLayer> PackClass(List<Component> members, int bins)
    {
        if (members.Count <= bins)
            return members.OrderByDescending(c => c.Size).ThenBy(c => c.Name, StringComparer.Ordinal)
                .Select(c => new PlannedLayer([c.Name], c.Size)).ToList();
        int groups = Math.Max(1, bins / 4);
        int singles = bins - groups;
        var bySize = members.OrderByDescending(c => c.Size).ThenBy(c => c.Name, StringComparer.Ordinal).ToList();
        var layers = bySize.Take(singles).Select(c => new PlannedLayer([c.Name], c.Size)).ToList();
        layers.AddRange(PackContiguous(bySize.Skip(singles).OrderBy(c => c.Name, StringComparer.Ordinal).ToList(), groups));
        return layers;
    }

    private static ChunkPlan? KeepPrevious(IReadOnlyList<Component> components, int maxLayers, ChunkPlan previous)
    {
        var byName = components.ToDictionary(c => c.Name, StringComparer.Ordinal);
        // A previous layer may name a whole package that is now cut into parts (an image from an
        // earlier version, another tool, or a plan made elsewhere): all its parts stay there.
        var partsOf = components.Where(c => c.Parent != null).GroupBy(c => c.Parent!, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(c => c.Name).OrderBy(n => n, StringComparer.Ordinal).ToList(), StringComparer.Ordinal);
        var placed = new HashSet<string>(StringComparer.Ordinal);
        var layers = new List<PlannedLayer>();
        foreach (var old in previous.Layers)
        {
            var still = old.Components
                .SelectMany(n => byName.ContainsKey(n) ? [n] : partsOf.TryGetValue(n, out var parts) ? parts : (IEnumerable<string>)[])
                .Where(placed.Add).ToList();
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
