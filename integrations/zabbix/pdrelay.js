// pdrelay media type for Zabbix 6.0 and later: posts the event to pdrelay, which pages PagerDuty.
// Zabbix runs this script (ECMAScript 5.1, Duktape) with the media type's parameters as JSON in
// `value`. The body is pdrelay's "zabbix" format: {"zabbix": 1, "event": {...}, "trigger": {...},
// "host": {...}, "zabbix_url": ...}. Parameters are sent as Zabbix resolved them; a macro left as
// written (the media type's Test dialog) tells pdrelay it is a test.
var params = JSON.parse(value);

function param(name) {
    var found = params[name];
    return typeof found === 'string' ? found : '';
}

// "1" -> 1, anything else as given (pdrelay reads both).
function number(text) {
    return /^[0-9]+$/.test(text) ? parseInt(text, 10) : text;
}

// {EVENT.DATE} "yyyy.mm.dd" and {EVENT.TIME} "hh:mm:ss" are the Zabbix server's local time, as is
// this script's Date: the ISO 8601 UTC moment, or null when they are not a date and a time.
function moment(date, time) {
    var d = /^(\d{4})\.(\d{2})\.(\d{2})$/.exec(date),
        t = /^(\d{2}):(\d{2}):(\d{2})$/.exec(time);
    if (!d || !t) {
        return null;
    }
    var at = new Date(parseInt(d[1], 10), parseInt(d[2], 10) - 1, parseInt(d[3], 10),
        parseInt(t[1], 10), parseInt(t[2], 10), parseInt(t[3], 10));
    return isNaN(at.getTime()) ? null : at.toISOString();
}

// {EVENT.TAGSJSON}: [{"tag": ..., "value": ...}], or the text as given when it is not JSON.
function tags(text) {
    try {
        return JSON.parse(text);
    }
    catch (error) {
        return text;
    }
}

try {
    var url = param('pdrelay_url'),
        token = param('token');
    if (!/^https?:\/\//.test(url)) {
        throw 'the pdrelay URL ("Send to" of the user\'s media, {ALERT.SENDTO}) must start with https://, got "'
            + url + '"';
    }
    if (token === '' || token.charAt(0) === '<') {
        throw 'set the media type\'s "token" parameter to the pdrelay token';
    }

    var body = {
        zabbix: 1,
        event: {
            id: param('event_id'),
            source: number(param('event_source')),
            value: number(param('event_value')),
            update_status: number(param('event_update_status')),
            update_action: param('event_update_action'),
            update_message: param('event_update_message'),
            update_user: param('event_update_user'),
            ack: param('event_ack'),
            recovery_id: param('event_recovery_id'),
            severity: param('event_severity'),
            nseverity: number(param('event_nseverity')),
            name: param('event_name'),
            tags: tags(param('event_tags')),
            opdata: param('event_opdata'),
            date: param('event_date'),
            time: param('event_time'),
            started_at: moment(param('event_date'), param('event_time')),
            recovered_at: moment(param('event_recovery_date'), param('event_recovery_time')),
            updated_at: moment(param('event_update_date'), param('event_update_time'))
        },
        trigger: {
            id: param('trigger_id'),
            url: param('trigger_url'),
            description: param('trigger_description')
        },
        host: {
            name: param('host_name'),
            ip: param('host_ip'),
            groups: param('host_groups')
        },
        zabbix_url: param('zabbix_url')
    };

    var request = new HttpRequest();
    if (param('http_proxy') !== '') {
        request.setProxy(param('http_proxy'));
    }
    request.addHeader('Content-Type: application/json');
    request.addHeader('Authorization: Bearer ' + token);
    Zabbix.log(4, '[pdrelay] sending event ' + body.event.id + ' to ' + url);
    var answer = request.post(url, JSON.stringify(body)),
        status = request.getStatus();
    Zabbix.log(4, '[pdrelay] HTTP ' + status + ': ' + answer);
    if (status < 200 || status > 299) {
        throw 'HTTP ' + status + ': ' + String(answer).substring(0, 500);
    }
    return 'OK';
}
catch (error) {
    Zabbix.log(3, '[pdrelay] notification failed: ' + error);
    throw 'pdrelay notification failed: ' + error;
}
