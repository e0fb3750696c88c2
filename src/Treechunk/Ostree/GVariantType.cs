namespace Treechunk.Ostree;

/// <summary>A parsed GVariant type string, with the alignment and fixed size the serialiser needs.</summary>
public sealed class GVariantType : IEquatable<GVariantType>
{
    private const int MaxDepth = 64;

    /// <summary>The type character: a basic type, 'v', 'a' (array), 'm' (maybe), '(' (tuple) or '{' (dict entry).</summary>
    public char Kind { get; }
    /// <summary>Element type of an array or maybe.</summary>
    public GVariantType? Element { get; }
    /// <summary>Members of a tuple or dict entry.</summary>
    public IReadOnlyList<GVariantType> Members { get; } = [];
    public int Alignment { get; }
    /// <summary>The serialised size when it never varies, else 0.</summary>
    public int FixedSize { get; }
    public string Signature { get; }

    public bool IsFixedSize => FixedSize > 0;

    private GVariantType(char kind, GVariantType? element, IReadOnlyList<GVariantType>? members, string signature)
    {
        Kind = kind;
        Element = element;
        if (members != null) Members = members;
        Signature = signature;
        (Alignment, FixedSize) = kind switch
        {
            'y' or 'b' => (1, 1),
            'n' or 'q' => (2, 2),
            'i' or 'u' or 'h' => (4, 4),
            'x' or 't' or 'd' => (8, 8),
            's' or 'o' or 'g' => (1, 0),
            'v' => (8, 0),
            'a' or 'm' => (element!.Alignment, 0),
            _ => ContainerLayout(Members),
        };
    }

    private static (int Alignment, int FixedSize) ContainerLayout(IReadOnlyList<GVariantType> members)
    {
        int align = 1;
        foreach (var m in members) align = Math.Max(align, m.Alignment);
        if (members.Count == 0) return (1, 1); // "()" is one zero byte
        int size = 0;
        foreach (var m in members)
        {
            if (!m.IsFixedSize) return (align, 0);
            size = Align(size, m.Alignment) + m.FixedSize;
        }
        return (align, Align(size, align));
    }

    internal static int Align(int offset, int alignment) => (offset + alignment - 1) & ~(alignment - 1);

    public static GVariantType Parse(string signature)
    {
        int pos = 0;
        var t = ParseOne(signature, ref pos, 0);
        if (pos != signature.Length) throw new GVariantException($"invalid GVariant type '{signature}': trailing characters");
        return t;
    }

    /// <summary>Parses one complete type at <paramref name="pos"/> (used for variant payload types).</summary>
    internal static GVariantType ParseOne(string s, ref int pos, int depth)
    {
        if (depth > MaxDepth) throw new GVariantException("GVariant type nests too deeply");
        if (pos >= s.Length) throw new GVariantException($"invalid GVariant type '{s}': incomplete");
        int start = pos;
        char c = s[pos++];
        switch (c)
        {
            case 'y' or 'b' or 'n' or 'q' or 'i' or 'u' or 'x' or 't' or 'h' or 'd' or 's' or 'o' or 'g' or 'v':
                return Basic(c);
            case 'a' or 'm':
            {
                var element = ParseOne(s, ref pos, depth + 1);
                return new GVariantType(c, element, null, s[start..pos]);
            }
            case '(':
            {
                var members = new List<GVariantType>();
                while (true)
                {
                    if (pos >= s.Length) throw new GVariantException($"invalid GVariant type '{s}': unclosed tuple");
                    if (s[pos] == ')') { pos++; break; }
                    members.Add(ParseOne(s, ref pos, depth + 1));
                }
                return new GVariantType('(', null, members, s[start..pos]);
            }
            case '{':
            {
                var key = ParseOne(s, ref pos, depth + 1);
                if (key.Kind is 'a' or 'm' or '(' or '{' or 'v')
                    throw new GVariantException($"invalid GVariant type '{s}': dict entry key must be a basic type");
                var value = ParseOne(s, ref pos, depth + 1);
                if (pos >= s.Length || s[pos] != '}') throw new GVariantException($"invalid GVariant type '{s}': unclosed dict entry");
                pos++;
                return new GVariantType('{', null, [key, value], s[start..pos]);
            }
            default:
                throw new GVariantException($"invalid GVariant type '{s}': unexpected '{c}'");
        }
    }

    private static readonly Dictionary<char, GVariantType> Basics = "ybnqiuxthdsogv".ToDictionary(c => c, c => new GVariantType(c, null, null, c.ToString()));

    private static GVariantType Basic(char c) => Basics[c];

    public bool Equals(GVariantType? other) => other != null && other.Signature == Signature;
    public override bool Equals(object? obj) => Equals(obj as GVariantType);
    public override int GetHashCode() => Signature.GetHashCode();
    public override string ToString() => Signature;
}

public class GVariantException(string message) : TreechunkException(message);
