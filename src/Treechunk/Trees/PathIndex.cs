namespace Treechunk.Trees;

/// <summary>
/// A tree's entries by path, found by string or by span: the package databases look up
/// hundreds of thousands of recorded paths ("/usr/bin/x") by their tree form ("usr/bin/x"),
/// which as a span of the recorded string costs no allocation.
/// </summary>
public sealed class PathIndex
{
    private readonly Dictionary<string, TreeEntry> _byPath;
    private readonly Dictionary<string, TreeEntry>.AlternateLookup<ReadOnlySpan<char>> _bySpan;

    /// <summary>Indexes <paramref name="entries"/>; a path listed twice keeps its last entry.</summary>
    public PathIndex(IReadOnlyList<TreeEntry> entries)
    {
        _byPath = new Dictionary<string, TreeEntry>(entries.Count, StringComparer.Ordinal);
        foreach (var e in entries) _byPath[e.Path] = e;
        _bySpan = _byPath.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public TreeEntry? Find(string path) => _byPath.GetValueOrDefault(path);

    public TreeEntry? Find(ReadOnlySpan<char> path) => _bySpan.TryGetValue(path, out var e) ? e : null;

    public bool TryGetValue(string path, out TreeEntry entry) => _byPath.TryGetValue(path, out entry!);
}
