-- The foot of the plain-text mails is one shared template per language (`templates/<language>/
-- _footer.txt.j2`), which says "please do not reply" only when no read mailbox takes the replies
-- (OTV_MAIL_REPLY_TO). An administrator's text that kept the shipped foot word for word includes the shared
-- one instead, so it follows that setting too; a foot an administrator changed stays as written.
UPDATE mail_templates
SET body_text = replace(
    body_text,
    E'Diese E-Mail wurde automatisch erstellt. Bitte antworten Sie nicht auf diese E-Mail.\n'
    || E'Fragen? Rufen Sie uns an: {{ hotline }}\n'
    || E'Datenschutzhinweise: {{ privacy_url }}',
    '{% include "de/_footer.txt.j2" %}'
)
WHERE language = 'de';

UPDATE mail_templates
SET body_text = replace(
    body_text,
    E'Ein Computer hat diese E-Mail geschrieben.\n'
    || E'Bitte antworten Sie nicht auf diese E-Mail.\n'
    || E'Sie haben Fragen? Dann rufen Sie uns an: {{ hotline }}\n'
    || E'Mehr über den Datenschutz: {{ privacy_url }}',
    '{% include "de-x-ls/_footer.txt.j2" %}'
)
WHERE language = 'de-x-ls';

UPDATE mail_templates
SET body_text = replace(
    body_text,
    E'This e-mail was sent automatically. Please do not reply to it.\n'
    || E'Questions? Call us: {{ hotline }}\n'
    || E'Privacy notice: {{ privacy_url }}',
    '{% include "en/_footer.txt.j2" %}'
)
WHERE language = 'en';
