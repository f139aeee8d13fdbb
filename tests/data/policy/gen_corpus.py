#!/usr/bin/env python3
"""Generate the labelled policy corpus (tests/data/policy/corpus.jsonl).

Every document is synthetic: names are combined from short lists of common
family and given names, numbers are random, and check digits (個人番号,
法人番号, Luhn) are computed here, independently of the C engine, so the
quality test checks the engine against a second implementation.  Look-alikes
(order numbers, amounts, ordinary dates, 12- and 13-digit numbers with wrong
check digits, 16-digit numbers failing Luhn, version strings, words such as
発電機3台) are placed in the text unlabelled: a detection there is a false
positive.

Output: one JSON object per line:
  {"id": "ja-0001", "lang": "ja"|"en", "text": "...",
   "entities": [{"type": "phone", "start": B, "end": B}, ...],   # UTF-8 byte offsets
   "level": 0|1|2|3}                                            # marking in the text, 0 = none

Usage: gen_corpus.py [--seed N] [--out PATH]   (defaults reproduce the committed file)
"""
import argparse
import json
import random

FW = str.maketrans("0123456789", "０１２３４５６７８９")
HYPHENS = ["-", "-", "-", "‐", "－", "−", "–", "ー"]


class Doc:
    """A document built from segments; labelled segments become entities."""

    def __init__(self):
        self.parts = []

    def t(self, s):
        self.parts.append((s, None))
        return self

    def e(self, typ, s):
        self.parts.append((s, typ))
        return self

    def build(self):
        text, ents, pos = "", [], 0
        for s, typ in self.parts:
            b = len(s.encode("utf-8"))
            if typ is not None:
                ents.append({"type": typ, "start": pos, "end": pos + b})
            text += s
            pos += b
        return text, ents


# ---------------------------------------------------------------- numbers
def digits(r, n):
    return "".join(str(r.randrange(10)) for _ in range(n))


def mynumber_check(body11):
    s = 0
    for n in range(1, 12):
        p = int(body11[11 - n])
        q = n + 1 if n <= 6 else n - 5
        s += p * q
    r = s % 11
    return 0 if r <= 1 else 11 - r


def mynumber(r, valid=True):
    body = digits(r, 11)
    c = mynumber_check(body)
    if not valid:
        c = (c + r.randrange(1, 10)) % 10
        if c == mynumber_check(body):
            c = (c + 1) % 10
    return body + str(c)


def corporate_check(body12):
    s = 0
    for n in range(1, 13):
        p = int(body12[12 - n])
        s += p * (1 if n % 2 else 2)
    return 9 - s % 9


def corporate(r, valid=True):
    body = digits(r, 12)
    c = corporate_check(body)
    if not valid:
        c = (c + r.randrange(1, 9)) % 10
        if c == corporate_check(body):
            c = (c + 1) % 10
    return str(c) + body


def luhn_ok(num):
    s = 0
    for i, ch in enumerate(reversed(num)):
        v = int(ch)
        if i % 2 == 1:
            v *= 2
            if v > 9:
                v -= 9
        s += v
    return s % 10 == 0


def card(r, valid=True):
    kind = r.choice(["visa", "mc", "amex", "jcb"])
    if kind == "visa":
        pre, n = "4", 16
    elif kind == "mc":
        pre, n = str(r.randint(51, 55)), 16
    elif kind == "amex":
        pre, n = r.choice(["34", "37"]), 15
    else:
        pre, n = "35" + str(r.randint(28, 89)), 16
    body = pre + digits(r, n - len(pre) - 1)
    for c in range(10):
        if luhn_ok(body + str(c)) == valid:
            return body + str(c)
    raise AssertionError


def group(num, sizes, sep):
    out, i = [], 0
    for s in sizes:
        out.append(num[i:i + s])
        i += s
    return sep.join(out)


def fmt_mynumber(r, num):
    style = r.randrange(6)
    if style == 0:
        return num
    if style == 1:
        return group(num, [4, 4, 4], " ")
    if style == 2:
        return group(num, [4, 4, 4], r.choice(HYPHENS))
    if style == 3:
        return group(num, [4, 4, 4], "－").translate(FW)
    if style == 4:
        return num.translate(FW)
    return group(num, [4, 4, 4], "　")


def fmt_corporate(r, num):
    style = r.randrange(4)
    if style == 0:
        return num
    if style == 1:
        return num.translate(FW)
    if style == 2:
        return group(num, [1, 4, 4, 4], "-")
    return num


def fmt_card(r, num):
    sep = r.choice([" ", "-", "", " "])
    if len(num) == 15:
        return group(num, [4, 6, 5], sep)
    out = group(num, [4, 4, 4, 4], sep)
    return out.translate(FW) if r.random() < 0.1 else out


def phone(r):
    """A Japanese phone number in one of the usual written forms."""
    kind = r.randrange(10)
    h = r.choice(HYPHENS[:6])
    if kind <= 2:       # fixed line, area code of 1-4 digits after 0
        area = r.choice(["3", "6", "45", "52", "92", "11", "22", "75", "78", "82",
                         "466", "258", "1547", "4992"])
        local1 = str(r.randint(2, 9)) + digits(r, 4 - len(area))
        num = ("0" + area, local1, digits(r, 4))
    elif kind <= 5:     # mobile
        num = (r.choice(["090", "080", "070"]), digits(r, 4), digits(r, 4))
    elif kind == 6:     # toll free
        if r.random() < 0.5:
            num = ("0120", digits(r, 3), digits(r, 3))
        else:
            num = ("0800", digits(r, 3), digits(r, 4))
    elif kind == 7:     # IP phone
        num = ("050", digits(r, 4), digits(r, 4))
    else:
        area = r.choice(["3", "6", "45", "52"])
        num = ("0" + area, str(r.randint(2, 9)) + digits(r, 4 - len(area)), digits(r, 4))
    form = r.randrange(9)
    if form <= 3:
        return h.join(num)
    if form == 4:
        return "(" + num[0] + ")" + num[1] + "-" + num[2]
    if form == 5:
        return num[0] + "(" + num[1] + ")" + num[2]
    if form == 6:
        return "+81-" + num[0][1:] + "-" + num[1] + "-" + num[2]
    if form == 7:
        return "+81 " + num[0][1:] + " " + num[1] + " " + num[2]
    return "－".join(num).translate(FW)


def postal(r):
    return digits(r, 3) + "-" + digits(r, 4)


# ---------------------------------------------------------------- names
FAMILY = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤",
          "吉田", "山田", "佐々木", "山口", "松本", "井上", "木村", "林", "斎藤", "清水",
          "山崎", "森", "池田", "橋本", "阿部", "石川", "山下", "中島", "石井", "小川",
          "前田", "岡田", "長谷川", "藤田", "後藤", "近藤", "村上", "遠藤", "青木", "坂本",
          "西村", "福田", "太田", "三浦", "藤井", "岡本", "松田", "中川", "中野", "原田",
          "小野", "竹内", "金子", "和田", "中山", "石田", "上田", "森田", "原", "柴田"]
GIVEN = ["太郎", "花子", "一郎", "健太", "翔太", "陽菜", "美咲", "大輔", "直樹", "由美",
         "恵子", "誠", "亮", "愛", "拓也", "彩", "裕子", "浩二", "明美", "和也",
         "さくら", "ひかり", "ゆい", "はるか", "康弘", "智子", "真一", "聡", "優子", "隆"]
KANA_NAMES = ["ジョン・スミス", "マリア・ガルシア", "アンナ・シュミット", "デビッド・リー",
              "エミリー・ブラウン", "カルロス・ロペス"]
EN_FIRST = ["John", "Mary", "Robert", "Patricia", "Michael", "Linda", "David", "Susan",
            "James", "Karen", "Emily", "Daniel", "Olivia", "Thomas", "Sarah", "Kenji",
            "Yuki", "Hiroshi", "Aiko", "Takeshi"]
EN_LAST = ["Smith", "Johnson", "Williams", "Brown", "Miller", "Davis", "Wilson", "Taylor",
           "Anderson", "O'Brien", "McDonald", "Tanaka", "Suzuki", "Yamamoto", "Watanabe",
           "Clarke", "Nakamura", "Fischer", "Martin", "Kobayashi"]


def ja_name(r, full=None):
    if full is None:
        full = r.random() < 0.6
    f = r.choice(FAMILY)
    if not full:
        return f
    sep = r.choice(["", "", " ", "　"])
    return f + sep + r.choice(GIVEN)


def en_name(r, full=True):
    if not full:
        return r.choice(EN_LAST)
    return r.choice(EN_FIRST) + " " + r.choice(EN_LAST)


# ---------------------------------------------------------------- addresses
PREF_CITY = [
    ("東京都", ["千代田区", "中央区", "港区", "新宿区", "文京区", "台東区", "世田谷区", "八王子市", "町田市"]),
    ("北海道", ["札幌市中央区", "旭川市", "函館市"]),
    ("大阪府", ["大阪市北区", "堺市堺区", "豊中市", "吹田市"]),
    ("京都府", ["京都市中京区", "宇治市"]),
    ("神奈川県", ["横浜市中区", "川崎市川崎区", "相模原市中央区", "藤沢市"]),
    ("愛知県", ["名古屋市中区", "豊田市", "岡崎市"]),
    ("福岡県", ["福岡市博多区", "北九州市小倉北区", "久留米市"]),
    ("埼玉県", ["さいたま市浦和区", "川越市", "所沢市"]),
    ("千葉県", ["千葉市中央区", "船橋市", "柏市"]),
    ("宮城県", ["仙台市青葉区", "石巻市"]),
    ("広島県", ["広島市中区", "福山市"]),
    ("長野県", ["長野市", "松本市", "北佐久郡軽井沢町"]),
    ("沖縄県", ["那覇市", "中頭郡読谷村"]),
    ("鹿児島県", ["鹿児島市", "霧島市"]),
]
TOWNS = ["霞が関", "丸の内", "本町", "中央", "栄", "梅田", "天神", "錦", "大手町", "三田",
         "六本木", "青葉台", "桜木町", "南町", "西新宿", "東雲", "緑が丘", "旭町", "日本大通",
         "九段南", "四谷", "二番町", "大字上野"]
DESIGNATED = ("札幌市", "仙台市", "さいたま市", "千葉市", "横浜市", "川崎市", "相模原市",
              "名古屋市", "京都市", "大阪市", "堺市", "広島市", "北九州市", "福岡市")
KANJI_NUM = ["一", "二", "三", "四", "五", "六", "七", "八", "九"]
ROMAJI_TOWNS = [("Kasumigaseki", "Chiyoda-ku", "Tokyo"), ("Marunouchi", "Chiyoda-ku", "Tokyo"),
                ("Umeda", "Kita-ku", "Osaka"), ("Sakae", "Naka-ku", "Nagoya"),
                ("Tenjin", "Chuo-ku", "Fukuoka"), ("Roppongi", "Minato-ku", "Tokyo"),
                ("Nishi-Shinjuku", "Shinjuku-ku", "Tokyo")]


def address(r):
    pref, cities = r.choice(PREF_CITY)
    city = r.choice(cities)
    town = r.choice(TOWNS)
    form = r.randrange(5)
    a, b, c = r.randint(1, 9), r.randint(1, 30), r.randint(1, 25)
    if form == 0:
        block = "%d-%d-%d" % (a, b, c)
    elif form == 1:
        block = "%s丁目%d番%d号" % (KANJI_NUM[a - 1], b, c)
    elif form == 2:
        block = "%d丁目%d番地%d" % (a, b, c)
    elif form == 3:
        block = "%d番地" % (b * 10 + c)
    else:
        block = ("%d－%d－%d" % (a, b, c)).translate(FW)
    if r.random() < 0.2 and city.startswith(DESIGNATED):
        # designated city written without the prefecture
        return city + town + block
    return pref + city + town + block


def romaji_address(r):
    town, ward, city = r.choice(ROMAJI_TOWNS)
    return "%d-%d-%d %s, %s, %s" % (r.randint(1, 9), r.randint(1, 20), r.randint(1, 30),
                                     town, ward, city)


def email(r, ja=True):
    local = r.choice(["taro", "h.suzuki", "info", "k-tanaka", "yamada.hanako", "sato_k",
                      "m.smith", "contact", "jdoe", "office", "a.ito", "nakamura77"])
    dom = r.choice(["example-corp.co.jp", "city.minami.lg.jp", "mail.sample.ne.jp",
                    "kaisha-abc.jp", "widgets.example.com", "univ-test.ac.jp",
                    "trade-partner.org", "consult.example.net"])
    at = "＠" if ja and r.random() < 0.1 else "@"
    return local + at + dom


def dob(r, ja=True):
    y, m, d = r.randint(1940, 2005), r.randint(1, 12), r.randint(1, 28)
    if ja:
        form = r.randrange(5)
        if form == 0:
            return "%d年%d月%d日" % (y, m, d)
        if form == 1:
            if 1926 <= y <= 1988:
                return "昭和%d年%d月%d日" % (y - 1925, m, d)
            return "平成%d年%d月%d日" % (max(1, y - 1988), m, d)
        if form == 2:
            return "%d/%02d/%02d" % (y, m, d)
        if form == 3:
            return ("%d年%d月%d日" % (y, m, d)).translate(FW)
        return "%d-%02d-%02d" % (y, m, d)
    months = ["January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December"]
    form = r.randrange(3)
    if form == 0:
        return "%s %d, %d" % (months[m - 1], d, y)
    if form == 1:
        return "%d %s %d" % (d, months[m - 1], y)
    return "%d-%02d-%02d" % (y, m, d)


def ipv4(r):
    return "%d.%d.%d.%d" % (r.choice([10, 172, 192, 203, 198]), r.randint(0, 255),
                            r.randint(0, 255), r.randint(1, 254))


def ipv6(r):
    g = ["%x" % r.randint(1, 0xffff) for _ in range(8)]
    if r.random() < 0.5:
        return "2001:db8:" + ":".join(g[:2]) + "::" + g[7]
    return ":".join(g)


# ---------------------------------------------------------------- look-alikes
def lookalike_ja(r, d):
    k = r.randrange(12)
    if k == 0:
        d.t("注文番号 ORD-%d-%05d の件、" % (r.randint(2019, 2025), r.randint(1, 99999)))
    elif k == 1:
        d.t("請求金額は%s円（税込）です。" % "{:,}".format(r.randint(1000, 9999999)))
    elif k == 2:
        d.t("%d年%d月%d日に開催します。" % (r.randint(2023, 2026), r.randint(1, 12), r.randint(1, 28)))
    elif k == 3:
        d.t("管理番号 %s を参照してください。" % group(mynumber(r, False), [4, 4, 4], r.choice(["", "-"])))
    elif k == 4:
        d.t("受付番号%sで登録済みです。" % corporate(r, False))
    elif k == 5:
        d.t("追跡番号 %s をご確認ください。" % group(card(r, False), [4, 4, 4, 4], " ")[:19])
    elif k == 6:
        d.t("会議室3Aで10:30から、発電機3台の点検について協議します。")
    elif k == 7:
        d.t("システムのバージョン 2.4.1.%d を適用しました。" % r.randint(0, 9))
    elif k == 8:
        d.t("内線%d までご連絡ください。" % r.randint(1000, 9999))
    elif k == 9:
        d.t("お客様各位、いつもお世話になっております。皆様のご協力に感謝します。")
    elif k == 10:
        d.t("機密性の高い情報の取扱いには注意してください。ご担当者様にもお伝えください。")
    else:
        d.t("予算%d万円、数量%d個、期間%dか月。" % (r.randint(10, 900), r.randint(1, 500), r.randint(1, 24)))


def lookalike_en(r, d):
    k = r.randrange(8)
    if k == 0:
        d.t("Order number ORD-%d-%05d has shipped. " % (r.randint(2019, 2025), r.randint(1, 99999)))
    elif k == 1:
        d.t("The invoice total is JPY %s. " % "{:,}".format(r.randint(1000, 9999999)))
    elif k == 2:
        d.t("The meeting is on %d April %d at 10:30. " % (r.randint(1, 28), r.randint(2023, 2026)))
    elif k == 3:
        d.t("Reference number %s is attached. " % mynumber(r, False))
    elif k == 4:
        d.t("Tracking ID %s. " % group(card(r, False), [4, 4, 4, 4], " ")[:19])
    elif k == 5:
        d.t("We upgraded to version 3.2.%d.1 last week. " % r.randint(0, 9))
    elif k == 6:
        d.t("Room 12B, extension %d. " % r.randint(1000, 9999))
    else:
        d.t("Quantity: %d units, lead time %d weeks. " % (r.randint(1, 900), r.randint(1, 12)))


# ---------------------------------------------------------------- markings
MARK3 = ["機密性３", "機密性3", "機3", "【機密性３情報】", "［機密性３］", "機密性 3", "機 密 性 ３",
         "（機3）", "【機密性3】", "機密性：３", "[機密性3情報]", "機密性三"]
MARK2 = ["機密性２", "機密性2", "機2", "【機密性２情報】", "［機密性２］", "機密性 2"]
MARK1 = ["機密性１", "機密性1", "【機密性１情報】", "機1"]

JA_OPEN = ["お世話になっております。", "標記の件について、下記のとおりご連絡いたします。",
           "いつも大変お世話になっております。", "以下のとおり申請内容を確認しました。",
           "本日の打合せ内容を共有します。", "先日ご依頼の件につき回答いたします。"]
JA_BODY = ["資料は来週中に送付いたします。", "ご不明な点があればご連絡ください。",
           "手続きは窓口で受け付けます。", "内容をご確認のうえ、ご返送をお願いします。",
           "引き続きよろしくお願いいたします。", "審査の結果は後日通知いたします。",
           "関係部署と調整のうえ対応します。"]
EN_OPEN = ["Thank you for your inquiry.", "Please find the application details below.",
           "Following up on our meeting last week.", "We have received your request.",
           "This is a summary of the call."]
EN_BODY = ["Please confirm the details at your earliest convenience.",
           "The documents will be sent next week.", "Let us know if anything is unclear.",
           "We appreciate your cooperation.", "The review will be completed by the end of the month."]


def ja_doc(r, d):
    d.t(r.choice(JA_OPEN) + "\n")
    items = r.sample(range(16), r.randint(3, 7))
    for it in items:
        if it == 0:
            d.t(r.choice(["申請者：", "氏名：", "担当：", "担当者 ", "依頼者：", "代表者："]))
            d.e("person_name", ja_name(r, True))
            d.t("\n")
        elif it == 1:
            d.e("person_name", ja_name(r))
            d.t(r.choice(["様、", "様\n", "さんから連絡がありました。", "氏によれば、", "殿\n"]))
        elif it == 2:
            d.t(r.choice(["個人番号：", "マイナンバー ", "個人番号は"]))
            d.e("mynumber", fmt_mynumber(r, mynumber(r)))
            d.t(r.choice(["です。\n", "\n", "（確認済み）\n"]))
        elif it == 3:
            d.t(r.choice(["法人番号 ", "法人番号：", "登録番号 T"]))
            d.e("corporate_number", fmt_corporate(r, corporate(r)))
            d.t("\n")
        elif it == 4:
            d.t(r.choice(["電話：", "TEL ", "連絡先 ", "携帯 ", "お問い合わせは"]))
            d.e("phone", phone(r))
            d.t(r.choice(["\n", "まで。\n", "（平日9時〜17時）\n"]))
        elif it == 5:
            d.t(r.choice(["住所：", "所在地 ", "送付先："]))
            if r.random() < 0.7:
                d.t(r.choice(["〒", "〒 ", "郵便番号："]))
                d.e("postal_code", postal(r) if r.random() < 0.85 else digits(r, 7))
                d.t(" ")
            d.e("address", address(r))
            d.t(r.choice(["\n", " 第二ビル3階\n", "（本社）\n"]))
        elif it == 6:
            d.t(r.choice(["メール：", "E-mail: ", "連絡先メールアドレス "]))
            d.e("email", email(r, True))
            d.t("\n")
        elif it == 7:
            d.t(r.choice(["カード番号 ", "クレジットカード："]))
            d.e("card", fmt_card(r, card(r)))
            d.t("\n")
        elif it == 8:
            d.t(r.choice(["振込先 普通預金 口座番号 ", "口座番号：", "当座 "]))
            d.e("bank_account", digits(r, 7))
            d.t("\n")
        elif it == 9:
            d.t(r.choice(["旅券番号 ", "パスポート番号："]))
            d.e("passport", r.choice(["TK", "TR", "MU", "TZ", "RE"]) + digits(r, 7))
            d.t("\n")
        elif it == 10:
            d.t(r.choice(["運転免許証番号 ", "免許証番号："]))
            d.e("drivers_licence", digits(r, 12))
            d.t("\n")
        elif it == 11:
            d.t(r.choice(["生年月日：", "生年月日 ", "誕生日は"]))
            d.e("date_of_birth", dob(r, True))
            d.t("\n")
        elif it == 12:
            d.t("接続元IPアドレス ")
            d.e("ip_address", ipv4(r) if r.random() < 0.7 else ipv6(r))
            d.t(" からのアクセスを確認しました。\n")
        elif it == 13:
            d.t(r.choice(["担当の", "窓口の", "課長の"]))
            d.e("person_name", ja_name(r, False))
            d.t(r.choice(["さんに確認します。", "様へ転送しました。"]))
            d.t("\n")
        elif it == 14:
            d.t("連絡先：")
            d.e("person_name", r.choice(KANA_NAMES))
            d.t(r.choice(["様（海外支社）\n", "氏\n"]))
        else:
            lookalike_ja(r, d)
            d.t("\n")
        if r.random() < 0.5:
            lookalike_ja(r, d)
            d.t("\n")
        if r.random() < 0.3:
            d.t(r.choice(JA_BODY) + "\n")
    d.t(r.choice(JA_BODY))


def en_doc(r, d):
    d.t(r.choice(EN_OPEN) + "\n")
    items = r.sample(range(12), r.randint(3, 6))
    for it in items:
        if it == 0:
            d.t(r.choice(["Mr. ", "Ms. ", "Dr. ", "Mrs. ", "Prof. "]))
            d.e("person_name", en_name(r, r.random() < 0.6))
            d.t(r.choice([" will attend the meeting.\n", " called this morning.\n", " approved the plan.\n"]))
        elif it == 1:
            d.t(r.choice(["Applicant: ", "Name: ", "Contact: ", "Attn: ", "Dear "]))
            d.e("person_name", en_name(r, True))
            d.t(r.choice([",\n", "\n"]))
        elif it == 2:
            d.t(r.choice(["Email: ", "Please write to ", "Contact address: "]))
            d.e("email", email(r, False))
            d.t(".\n")
        elif it == 3:
            d.t(r.choice(["Phone: ", "Tel: ", "Call us at ", "Mobile: "]))
            d.e("phone", phone(r).translate(str.maketrans("０１２３４５６７８９－", "0123456789-")))
            d.t(".\n")
        elif it == 4:
            d.t("Card number: ")
            d.e("card", fmt_card(r, card(r)).translate(str.maketrans("０１２３４５６７８９", "0123456789")))
            d.t("\n")
        elif it == 5:
            d.t("Office: ")
            d.e("address", romaji_address(r))
            d.t(" ")
            d.e("postal_code", postal(r))
            d.t(", Japan.\n")
        elif it == 6:
            d.t(r.choice(["Date of birth: ", "DOB: ", "born on "]))
            d.e("date_of_birth", dob(r, False))
            d.t("\n")
        elif it == 7:
            d.t("Passport number ")
            d.e("passport", r.choice(["TK", "TR", "MU"]) + digits(r, 7))
            d.t(".\n")
        elif it == 8:
            d.t(r.choice(["The request came from ", "Source address "]))
            d.e("ip_address", ipv4(r) if r.random() < 0.6 else ipv6(r))
            d.t(".\n")
        elif it == 9:
            d.t("Individual Number (My Number): ")
            d.e("mynumber", group(mynumber(r), [4, 4, 4], r.choice([" ", "-", ""])))
            d.t("\n")
        elif it == 10:
            d.t("Corporate Number ")
            d.e("corporate_number", corporate(r))
            d.t("\n")
        else:
            lookalike_en(r, d)
            d.t("\n")
        if r.random() < 0.5:
            lookalike_en(r, d)
            d.t("\n")
        if r.random() < 0.3:
            d.t(r.choice(EN_BODY) + "\n")
    d.t(r.choice(EN_BODY))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=20240531)
    ap.add_argument("--out", default=None)
    ap.add_argument("--ja", type=int, default=220)
    ap.add_argument("--en", type=int, default=160)
    a = ap.parse_args()
    r = random.Random(a.seed)
    out = a.out
    if out is None:
        import os
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus.jsonl")
    docs = []
    for i in range(a.ja + a.en):
        ja = i < a.ja
        d = Doc()
        level = 0
        roll = r.random()
        if ja and roll < 0.22:
            level = 3
        elif ja and roll < 0.32:
            level = 2
        elif ja and roll < 0.38:
            level = 1
        if level:
            m = r.choice({3: MARK3, 2: MARK2, 1: MARK1}[level])
            if r.random() < 0.8:
                d.t(m + "\n")
            else:
                d.t("本資料（" + m + "）の取扱いに注意。\n")
        if ja:
            ja_doc(r, d)
        else:
            en_doc(r, d)
        text, ents = d.build()
        docs.append({"id": "%s-%04d" % ("ja" if ja else "en", i + 1), "lang": "ja" if ja else "en",
                     "text": text, "entities": ents, "level": level})
    with open(out, "w", encoding="utf-8") as f:
        for doc in docs:
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
