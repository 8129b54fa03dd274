from services.common import privacy


def test_masking():
    assert privacy.mask_phone("138 1234 5678") == "138****5678"
    assert privacy.mask_phone("+86 13812345678") == "138****5678"
    assert privacy.mask_name("王秀英") == "王**"
    assert privacy.mask_name("王五") == "王*"
    assert privacy.mask_id_number("371324199001011234") == "3713**********1234"


def test_masking_free_text_catches_phones_and_id_numbers_but_keeps_other_numbers():
    text = "我叫张三，电话13812345678，身份证37132419900101123X，欠款20000元，案号371324-20261129-000001"
    masked = privacy.mask_text(text)
    assert "13812345678" not in masked and "138****5678" in masked
    assert "37132419900101123X" not in masked and "3713**********123X" in masked
    assert "20000元" in masked and "371324-20261129-000001" in masked


def test_encryption_round_trips_and_hides_the_value():
    token = privacy.encrypt("13812345678")
    assert "13812345678" not in token
    assert privacy.decrypt(token) == "13812345678"


def test_keyed_hash_matches_the_same_phone_however_written():
    assert privacy.keyed_hash("138-1234-5678", "phone") == privacy.keyed_hash("+86 13812345678", "phone")
    assert privacy.keyed_hash("13812345678", "phone") != privacy.keyed_hash("13812345679", "phone")
