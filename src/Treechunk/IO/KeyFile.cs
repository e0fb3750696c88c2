namespace Treechunk.IO;

/// <summary>
/// GLib-style key files, as OSTree's <c>config</c> and dnf's <c>.repo</c> files are written:
/// <c>[group]</c> lines, <c>key=value</c> lines, <c>#</c> and <c>;</c> comments.
/// </summary>
public sealed class KeyFile
{
    private readonly Dictionary<(string Group, string Key), string> _values = new();
    private readonly List<string> _groups = [];

    /// <summary>Group names in the order they first appear.</summary>
    public IReadOnlyList<string> Groups => _groups;

    /// <param name="strict">Refuse lines that are neither groups, keys nor comments (OSTree's config);
    /// lenient parsing skips them (dnf continues values on indented lines).</param>
    public static KeyFile Parse(string text, string what, bool strict = true)
    {
        var kf = new KeyFile();
        string? group = null;
        int lineNo = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#') || line.StartsWith(';')) continue;
            if (line.StartsWith('[') && line.EndsWith(']'))
            {
                group = line[1..^1].Trim();
                if (!kf._groups.Contains(group)) kf._groups.Add(group);
                continue;
            }
            int eq = line.IndexOf('=');
            if (eq <= 0 || group == null)
            {
                if (strict) throw new TreechunkException($"{what}:{lineNo}: not a key file line: '{line}'");
                continue;
            }
            kf._values[(group, line[..eq].Trim())] = line[(eq + 1)..].Trim();
        }
        return kf;
    }

    public string? Get(string group, string key) => _values.GetValueOrDefault((group, key));
}
