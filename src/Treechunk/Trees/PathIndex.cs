namespace Treechunk.Trees;

/// <summary>
/// A tree's entries by path, found by string or by span: the package databases look up
/// hundreds of thousands of recorded paths ("/usr/bin/x") by their tree form ("usr/bin/x"),
/// which as a span of the recorded string costs no allocation. The set holds the entries
/// themselves, hashed by their paths' characters, so entries in compact form
/// (<see cref="TreeEntry"/>) are indexed without a path string each.
/// </summary>
public sealed class PathIndex
{
    private readonly HashSet<TreeEntry> _entries;
    private readonly HashSet<TreeEntry>.AlternateLookup<ReadOnlySpan<char>> _bySpan;

    /// <summary>Indexes <paramref name="entries"/>; a path listed twice keeps its last entry.</summary>
    public PathIndex(IReadOnlyList<TreeEntry> entries)
    {
        _entries = new HashSet<TreeEntry>(entries.Count, ByPath.Instance);
        foreach (var e in entries)
            if (!_entries.Add(e))
            {
                _entries.Remove(e);
                _entries.Add(e);
            }
        _bySpan = _entries.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public TreeEntry? Find(string path) => Find(path.AsSpan());

    public TreeEntry? Find(ReadOnlySpan<char> path) => _bySpan.TryGetValue(path, out var e) ? e : null;

    public bool TryGetValue(string path, out TreeEntry entry) => _bySpan.TryGetValue(path, out entry!);

    /// <summary>Entries are the same key when their paths are; a span finds the entry with that path.</summary>
    private sealed class ByPath : IEqualityComparer<TreeEntry>, IAlternateEqualityComparer<ReadOnlySpan<char>, TreeEntry>
    {
        public static readonly ByPath Instance = new();

        public bool Equals(TreeEntry? x, TreeEntry? y) =>
            ReferenceEquals(x, y) || x != null && y != null && TreeEntry.ComparePaths(x, y) == 0;

        public int GetHashCode(TreeEntry e) => e.PathHashCode();

        public bool Equals(ReadOnlySpan<char> path, TreeEntry e) => e.PathEquals(path);

        public int GetHashCode(ReadOnlySpan<char> path) => string.GetHashCode(path);

        public TreeEntry Create(ReadOnlySpan<char> path) => throw new NotSupportedException("the index only holds tree entries");
    }
}
